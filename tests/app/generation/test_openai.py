"""The `openai` generator against a fake OpenAI-compatible completions server (httpx MockTransport)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from app.generation.base import GenerationRequest
from app.generation.openai import OpenAIGenerator


def _server(pieces: list[str], seen: list[dict], usage: dict | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "hcm-adapter"}]})
        seen.append(json.loads(request.content))
        chunks = [{"choices": [{"text": p, "finish_reason": None}]} for p in pieces]
        if usage is not None:  # as vLLM and OpenAI send it with stream_options.include_usage: no choices
            chunks.append({"choices": [], "usage": usage})
        body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handler)


def _generator(pieces: list[str], seen: list[dict], usage: dict | None = None) -> OpenAIGenerator:
    client = httpx.Client(transport=_server(pieces, seen, usage), base_url="http://vllm:8000")
    return OpenAIGenerator("http://vllm:8000/v1", "hcm-adapter", client=client)


def test_sends_the_prompt_with_stops_and_streams_the_text():
    seen: list[dict] = []
    gen = _generator([" He was", " born in", " 1890.", "\n<human>: next"], seen)
    shown: list[str] = []
    request = GenerationRequest("<human>: when?\n<assistant>:", 32, time.monotonic() + 10, shown.append)
    (result,) = gen.generate_batch([request])
    assert result.text == "He was born in 1890."
    assert "<human" not in "".join(shown) and "".join(shown).strip() == "He was born in 1890."
    assert seen[0]["model"] == "hcm-adapter" and seen[0]["max_tokens"] == 32 and seen[0]["temperature"] == 0
    assert "<human>:" in seen[0]["stop"] and seen[0]["prompt"].endswith("<assistant>:")
    gen.warmup()


def test_the_servers_own_token_counts_are_used_when_it_sends_them():
    seen: list[dict] = []
    usage = {"prompt_tokens": 57, "completion_tokens": 5, "total_tokens": 62}
    gen = _generator([" He was", " born in", " 1890."], seen, usage)
    (result,) = gen.generate_batch([GenerationRequest("p", 32, time.monotonic() + 10)])
    assert seen[0]["stream_options"] == {"include_usage": True}
    assert (result.text, result.prompt_tokens, result.tokens) == ("He was born in 1890.", 57, 5)
    (without,) = _generator([" He was", " born in", " 1890."], []).generate_batch(
        [GenerationRequest("p", 32, time.monotonic() + 10)]
    )
    assert (without.prompt_tokens, without.tokens) == (0, 3)  # not sent: unknown, and one token per piece


def test_a_cancelled_request_stops_reading():
    seen: list[dict] = []
    gen = _generator(["word "] * 50, seen)
    request = GenerationRequest("p", 64, time.monotonic() + 10)
    request.cancelled.set()
    (result,) = gen.generate_batch([request])
    assert result.finish == "cancelled" and result.tokens == 0


def test_an_unreachable_server_fails_the_warmup():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    gen = OpenAIGenerator("http://vllm:8000/v1", "m", client=httpx.Client(transport=httpx.MockTransport(down)))
    with pytest.raises(httpx.ConnectError):
        gen.warmup()
