"""The OpenAI-compatible routes, checked by hand and with the official `openai` client (no server, no network)."""

from __future__ import annotations

import json

import openai
import pytest

from app.prompt import estimate_tokens
from app.strings import SUGGESTIONS
from tests.app.api.test_api import NOVEL_RELATED, OFF_TOPIC
from tests.app.conftest import make_client
from tests.conftest import FakeGenerator

CHAT = "/v1/chat/completions"


def _ask(content: object, **extra: object) -> dict[str, object]:
    return {"model": "hcm-kiosk", "messages": [{"role": "user", "content": content}], **extra}


def _stream(client, body: dict[str, object]) -> list[dict]:
    with client.stream("POST", CHAT, json={**body, "stream": True}) as r:
        assert r.status_code == 200
        raw = "".join(r.iter_text())
    events = [block.removeprefix("data: ") for block in raw.strip().split("\n\n")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def _text(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


def _assert_openai_error(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"] and error["type"]
    assert code is None or error["code"] == code
    return error


def test_the_one_model_is_listed_and_can_be_looked_up(client):
    listed = client.get("/v1/models").json()
    assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == ["hcm-kiosk"]
    model = client.get("/v1/models/hcm-kiosk").json()
    assert model["object"] == "model" and model["id"] == "hcm-kiosk" and isinstance(model["created"], int)
    _assert_openai_error(client.get("/v1/models/gpt-4o"), 404, "model_not_found")
    _assert_openai_error(client.post(CHAT, json={**_ask(NOVEL_RELATED), "model": "gpt-4o"}), 404, "model_not_found")


def test_each_completion_streams_under_its_own_id_and_text_starts_without_a_space(client, fake):
    first, second = _stream(client, _ask(NOVEL_RELATED)), _stream(client, _ask(NOVEL_RELATED))
    ids = [{c["id"] for c in chunks} for chunks in (first, second)]
    assert all(len(i) == 1 for i in ids) and ids[0] != ids[1]  # one id per completion, never shared
    assert len({c["created"] for c in first}) == 1
    assert first[0]["choices"][0]["delta"]["role"] == "assistant"
    assert _text(first) == fake.text  # the fake's words come with a leading space each, as tokens do
    assert first[-1]["choices"][0]["finish_reason"] == "stop" and "usage" not in first[-1]
    rid = next(iter(ids[0])).removeprefix("chatcmpl-")
    assert client.post("/api/v1/feedback", json={"request_id": rid, "helpful": True}).status_code == 201


def test_usage_counts_the_prompt_when_a_model_wrote_the_answer(client, fake):
    generated = client.post(CHAT, json=_ask(NOVEL_RELATED)).json()
    assert generated["kiosk"]["route"] == "generated"
    usage = generated["usage"]
    assert usage["prompt_tokens"] == len(fake.last_prompt.split()) > 0  # the fake counts words as tokens
    assert usage["completion_tokens"] == len(fake.text.split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    curated = client.post(CHAT, json=_ask("where was he born")).json()
    assert curated["kiosk"]["route"] == "curated" and curated["usage"]["total_tokens"] == 0  # no model ran


def test_include_usage_ends_the_stream_with_a_usage_chunk(client, fake):
    chunks = _stream(client, _ask(NOVEL_RELATED, stream_options={"include_usage": True}))
    *text_chunks, last = chunks
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == len(fake.text.split())
    assert last["usage"]["prompt_tokens"] > 0
    assert all(c["usage"] is None for c in text_chunks)


def test_max_tokens_shortens_the_answer_and_the_server_cap_still_holds(client, fake):
    short = client.post(CHAT, json=_ask(NOVEL_RELATED, max_tokens=3)).json()
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["choices"][0]["message"]["content"] == " ".join(fake.text.split()[:3])
    assert short["usage"]["completion_tokens"] == 3
    client.post(CHAT, json=_ask(NOVEL_RELATED, max_completion_tokens=10_000))
    assert fake.last_max_new_tokens == 64  # KIOSK_MAX_NEW_TOKENS


def test_only_one_choice_can_be_asked_for(client, fake):
    assert _assert_openai_error(client.post(CHAT, json=_ask(NOVEL_RELATED, n=2)), 400)["param"] == "n"
    assert client.post(CHAT, json=_ask(NOVEL_RELATED, n=1)).status_code == 200
    assert fake.calls == 1


def test_content_may_be_a_list_of_text_parts(client, fake):
    parts = [{"type": "text", "text": text} for text in ("what did uncle ho think about the sea", "and fishermen?")]
    body = client.post(CHAT, json=_ask(parts)).json()
    assert body["kiosk"]["route"] == "generated"
    assert "what did uncle ho think about the sea\nand fishermen?" in fake.last_prompt
    image = [{"type": "image_url", "image_url": {"url": "http://example.com/x.png"}}]
    assert _assert_openai_error(client.post(CHAT, json=_ask(image)), 422)["param"] == "messages.0.content"


def test_the_off_topic_reply_lists_the_questions_it_announces(client):
    content = client.post(CHAT, json=_ask(OFF_TOPIC)).json()["choices"][0]["message"]["content"]
    suggested = SUGGESTIONS["en"][:3]
    assert content.endswith("\n".join(f"- {s}" for s in suggested)) and "for example:\n- " in content
    assert _text(_stream(client, _ask(OFF_TOPIC))) == content


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": []},
        {"messages": [{"role": "user"}]},
        {"messages": [{"role": "tool", "content": "x"}]},
        {"messages": [{"role": "assistant", "content": "hi"}]},
        _ask("x" * 501),
        _ask(NOVEL_RELATED, max_tokens=0),
    ],
)
def test_bad_requests_get_422_in_openais_form(client, fake, body):
    _assert_openai_error(client.post(CHAT, json=body), 422)
    assert fake.calls == 0


def test_rate_limit_and_busy_errors_are_in_openais_form_with_retry_after(tmp_path):
    with make_client(tmp_path, rate_limit_per_minute=1) as c:
        assert c.post(CHAT, json=_ask(OFF_TOPIC)).status_code == 200
        r = c.post(CHAT, json=_ask(OFF_TOPIC))
        assert _assert_openai_error(r, 429, "rate_limit_exceeded") and int(r.headers["Retry-After"]) >= 1
    with make_client(tmp_path, FakeGenerator(delay_s=0.2), request_timeout_s=0.3) as c:
        r = c.post(CHAT, json=_ask(NOVEL_RELATED))
        assert _assert_openai_error(r, 503, "overloaded")["type"] == "server_error" and r.headers["Retry-After"]


def test_a_huge_history_is_cut_to_the_token_budget_in_the_prompt(client, fake):
    messages = []
    for i in range(9):  # 8 turns of ~1.6 KB, then a short one: ~13 KB of history
        size = 1 if i == 8 else 10
        messages += [
            {"role": "user", "content": f"question {i} " + "about his life " * 5 * size},
            {"role": "assistant", "content": f"answer {i} " + "he travelled a lot " * 4 * size},
        ]
    assert len(json.dumps(messages)) > 13_000
    messages.append({"role": "user", "content": NOVEL_RELATED})
    assert client.post(CHAT, json={"model": "hcm-kiosk", "messages": messages}).status_code == 200
    history = "\n".join(fake.last_prompt.split("\n")[1:-2])  # between the sources and the question
    assert 0 < estimate_tokens(history) <= 256  # KIOSK_MAX_HISTORY_TOKENS
    assert "question 8 " in history and "answer 8 " in history and "question 7 " not in history
    assert estimate_tokens(fake.last_prompt) < estimate_tokens(history) + 300  # the rest is bounded too


def test_the_official_openai_client(client, fake):
    """What chat clients do: list the models, then ask, plainly and streamed, with usage at the end."""
    api = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client, max_retries=0)
    assert [m.id for m in api.models.list()] == ["hcm-kiosk"]
    completion = api.chat.completions.create(model="hcm-kiosk", messages=[{"role": "user", "content": NOVEL_RELATED}])
    assert completion.choices[0].message.content == fake.text and completion.usage.prompt_tokens > 0
    stream = api.chat.completions.create(
        model="hcm-kiosk",
        messages=[{"role": "user", "content": NOVEL_RELATED}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == fake.text
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(fake.text.split())
    assert len({c.id for c in chunks}) == 1
    off = api.chat.completions.create(model="hcm-kiosk", messages=[{"role": "user", "content": OFF_TOPIC}])
    assert off.choices[0].message.content.endswith(SUGGESTIONS["en"][2])
    with pytest.raises(openai.NotFoundError):
        api.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": NOVEL_RELATED}])
    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model="hcm-kiosk", messages=[{"role": "user", "content": NOVEL_RELATED}], n=2)


def test_the_answer_is_in_the_language_of_the_last_message(client, fake):
    vi = client.post(CHAT, json=_ask("Bác Hồ sinh ở đâu?")).json()["choices"][0]["message"]["content"]
    assert fake.calls == 0 and any(c in vi for c in "ăâđêôơư")  # a Vietnamese verified reply or "did you mean"
    history = {
        "model": "hcm-kiosk",
        "messages": [
            {"role": "user", "content": "Bác Hồ sinh ở đâu?"},
            {"role": "assistant", "content": vi},
            {"role": "user", "content": "best pizza in town?"},
        ],
    }
    off = client.post(CHAT, json=history).json()["choices"][0]["message"]["content"]
    assert off.startswith("I can only")  # the last message is English: so is the reply
