"""Hostile input at the edge: malformed Unicode, unhandled errors, spoofed addresses, slow bodies, the docs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.__main__ import server_config
from app.api.schemas import QUESTION_PATTERN, TEXT_PATTERN, AskRequest, ChatMessage
from app.api.security import BodyLimitMiddleware
from app.kiosk.services import load_services
from app.main import create_app
from tests.app.conftest import STAFF_KEY, make_client, make_settings

POST_ROUTES = ["/api/v1/ask", "/api/v1/ask/stream", "/api/v1/classify", "/api/v1/feedback", "/v1/chat/completions"]
JSON = {"Content-Type": "application/json"}
CANARY = "okapi-canary-5521"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with make_client(tmp_path_factory.mktemp("hostile")) as c:
        yield c


def _assert_validation_shape(response: Any) -> None:
    """Every 422 has the shape the schema declares: a list of {loc, msg, type}; on /v1, OpenAI's error object."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    if response.url.path.startswith("/v1/"):
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["type"] == "invalid_request_error"
        return
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    for issue in detail:
        assert set(issue) == {"loc", "msg", "type"}
        assert isinstance(issue["loc"], list) and isinstance(issue["msg"], str) and isinstance(issue["type"], str)


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_lone_surrogate_gets_a_json_422_on_every_route(client, path):
    bodies = [
        b'{"question": "x \\ud800", "messages": [{"role": "user", "content": "x \\udfff"}], "request_id": "\\ud800"}',
        b'{"\\ud800": 1}',  # in a key: FastAPI would echo it in `loc`
        b'"\\ud800"',
    ]
    for body in bodies:
        r = client.post(path, content=body, headers=JSON)
        _assert_validation_shape(r)
        assert r.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in r.headers


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/api/v1/ask", {"question": "who\x1bwas he"}),
        ("/api/v1/classify", {"question": " \u3000\n "}),
        ("/api/v1/feedback", {"request_id": "0" * 32, "helpful": 1}),
        ("/api/v1/feedback", {"request_id": "0" * 32, "helpful": True, "comment": "nul\x00"}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "who was he\x00"}]}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "who was he\x1b[2J"}]}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "who was he"}], "stream": 0}),
        ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "hi"}]}),
    ],  # the route's own check
)
def test_every_422_has_the_validation_errors_shape(client, path, payload):
    _assert_validation_shape(client.post(path, json=payload))


def test_a_body_that_is_not_utf8_json_gets_the_same_shape(client):
    _assert_validation_shape(client.post("/api/v1/ask", content=b'{"question": "caf\xe9"}', headers=JSON))
    _assert_validation_shape(client.post("/api/v1/ask", content=b'{"question": ', headers=JSON))


def test_an_unhandled_error_is_a_json_500_with_headers_a_close_and_no_request_in_the_log(client, caplog):
    gate = client.app.state.services.gate
    original = gate.relevance

    def broken(question: str) -> float:
        raise RuntimeError(f"cannot score {question!r}")  # an error whose message quotes the visitor

    gate.relevance = broken
    caplog.set_level(logging.DEBUG)
    try:
        r = client.post("/api/v1/classify", json={"question": f"{CANARY} who was uncle ho"})
    finally:
        gate.relevance = original
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}
    assert r.headers["connection"] == "close"  # the server closes it, and the client knows not to reuse it
    assert (
        r.headers["x-content-type-options"] == "nosniff"
        and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    )
    assert "unhandled RuntimeError" in caplog.text and "test_hostile.py" in caplog.text
    assert CANARY not in caplog.text  # caplog.text holds formatted tracebacks too
    assert client.post("/api/v1/classify", json={"question": "who was uncle ho"}).status_code == 200


def test_failing_requests_leave_no_visitor_text_in_the_log(client, caplog):
    caplog.set_level(logging.DEBUG)
    failing = [
        ("/api/v1/ask", f'{{"question": "{CANARY} \\ud800"}}'.encode()),
        ("/api/v1/ask", f'{{"question": "{CANARY} \\u0000"}}'.encode()),
        ("/api/v1/classify", f'{{"question": "{CANARY}{"x" * 600}"}}'.encode()),
        ("/api/v1/feedback", f'{{"request_id": "{CANARY}", "helpful": true}}'.encode()),
        ("/v1/chat/completions", f'{{"messages": [{{"role": "user", "content": "{CANARY}\\ud800"}}]}}'.encode()),
        ("/api/v1/ask", f'{{"question": "{CANARY}'.encode()),
    ]
    for path, body in failing:
        assert client.post(path, content=body, headers=JSON).status_code == 422
    assert CANARY not in caplog.text
    assert all(CANARY not in r.getMessage() for r in caplog.records)


# --- the schema states the rules that are checked -------------------------------------------------------


TRICKY = st.sampled_from(" \t\n\r\x00\x08\x0b\x0c\x1b\x1c\x1f\x7f\x85\xa0\u1680\u2003\u200b\u2028\u3000\ufeff")


@settings(max_examples=300, deadline=None)
@given(st.text(TRICKY | st.characters(codec="utf-8"), max_size=6))
def test_the_stated_patterns_are_the_rules_checked(text):
    """The patterns in the schema (what clients and schemathesis go by) accept exactly what the checks accept."""
    question_ok = re.search(QUESTION_PATTERN, text) is not None
    try:
        AskRequest(question=text)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == (question_ok and 1 <= len(text) <= 500)
    try:
        ChatMessage(role="user", content=text)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == (re.search(TEXT_PATTERN, text) is not None)


def test_the_schema_declares_errors_and_media_types(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    for path in POST_ROUTES:
        responses = paths[path]["post"]["responses"]
        shape = "/OpenAIErrorResponse" if path.startswith("/v1/") else "/ValidationErrorResponse"
        assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith(shape)
        assert {"408", "413", "429"} <= set(responses), path
        for status in ("408", "413", "429", "503"):
            declared = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert declared.endswith("/OpenAIErrorResponse" if path.startswith("/v1/") else "/ErrorResponse"), path
    question = schema["components"]["schemas"]["AskRequest"]["properties"]["question"]
    assert question["pattern"] == QUESTION_PATTERN and question["maxLength"] == 500
    chat = schema["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert chat["stream"]["type"] == "boolean"
    assert "429" in paths["/api/v1/staff/stats"]["get"]["responses"]


# --- errors at the edge: OpenAI's form on /v1, `{"detail"}` elsewhere ---------------------------------------


def _assert_error_form(response: Any, status: int) -> dict[str, Any]:
    """An error in its route's form: OpenAI's `{"error": {...}}` under /v1, `{"detail": str}` elsewhere."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    if response.url.path.startswith("/v1/"):
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["message"] and isinstance(body["error"]["message"], str)
        assert body["error"]["type"] == ("server_error" if status >= 500 else "invalid_request_error")
        return body["error"]
    assert set(body) == {"detail"} and isinstance(body["detail"], str) and body["detail"]
    return body


def _chunked_megabyte() -> Iterator[bytes]:
    for _ in range(64):
        yield b"a" * 16_384


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_body_over_the_limit_gets_413_in_the_routes_error_form(client, path):
    big = json.dumps({"question": "a" * 1_000_000}).encode()
    for r in (
        client.post(path, content=big, headers=JSON),
        client.post(path, content=_chunked_megabyte(), headers=JSON),
    ):
        _assert_error_form(r, 413)
        assert r.headers["connection"] == "close"


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/api/v1/classify", {"question": "who was uncle ho"}),
        ("/v1/chat/completions", {"model": "hcm-kiosk", "messages": [{"role": "user", "content": "who was uncle ho"}]}),
    ],
)
def test_an_unhandled_error_is_a_500_in_the_routes_error_form(client, path, payload):
    gate = client.app.state.services.gate
    original = gate.relevance

    def broken(question: str) -> float:
        raise RuntimeError("broken")

    gate.relevance = broken
    try:
        r = client.post(path, json=payload)
    finally:
        gate.relevance = original
    _assert_error_form(r, 500)
    assert r.headers["connection"] == "close"


def test_unknown_routes_and_methods_under_v1_answer_in_openais_form(client):
    assert _assert_error_form(client.post("/v1/embeddings", json={}), 404)["type"] == "invalid_request_error"
    _assert_error_form(client.get("/v1/chat/completions"), 405)
    assert set(client.get("/v1").json()) == {"error"}
    _assert_error_form(client.get("/api/v1/nothing"), 404)
    _assert_error_form(client.get("/api/v1/ask"), 405)


def test_while_starting_each_route_answers_503_in_its_error_form(tmp_path):
    c = TestClient(create_app(make_settings(tmp_path)))  # not entered: the lifespan has not loaded the services
    r = c.post("/v1/chat/completions", json={"model": "hcm-kiosk", "messages": [{"role": "user", "content": "hi"}]})
    assert _assert_error_form(r, 503) and r.headers["Retry-After"]
    _assert_error_form(c.post("/api/v1/ask", json={"question": "who was he"}), 503)


# --- rate limits: the real client, after validation, staff routes too ------------------------------------


def _proxied_client(tmp_path: Path, **overrides: object) -> TestClient:
    """The app as `python -m app` serves it (uvicorn's proxy-header handling included), called from
    127.0.0.1, the address uvicorn trusts by default."""
    settings = make_settings(tmp_path, rate_limit_per_minute=2, **overrides)
    app = create_app(settings, loader=lambda s: load_services(s, generator_factory=lambda _: None))
    config = server_config(app, settings)
    config.load()
    return TestClient(config.loaded_app, client=("127.0.0.1", 50000))


def test_a_spoofed_x_forwarded_for_does_not_reset_the_rate_limit(tmp_path):
    staff = {"X-API-Key": STAFF_KEY}
    with _proxied_client(tmp_path) as c:
        codes = [
            c.get("/api/v1/staff/stats", headers={**staff, "X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(3)
        ]
        assert codes == [200, 200, 429]
        r = c.post("/api/v1/classify", json={"question": "who was he"}, headers={"X-Forwarded-For": "198.51.100.7"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_forwarded_addresses_count_only_from_trusted_proxies(tmp_path):
    with _proxied_client(tmp_path, trusted_proxies=["127.0.0.1"]) as c:
        for i in range(3):  # each forwarded client has its own limit
            headers = {"X-Forwarded-For": f"203.0.113.{i}"}
            assert c.post("/api/v1/classify", json={"question": "who was he"}, headers=headers).status_code == 200
        codes = [
            c.post(
                "/api/v1/classify", json={"question": "who was he"}, headers={"X-Forwarded-For": "203.0.113.9"}
            ).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]


def test_a_malformed_request_gets_its_422_before_the_rate_limit(tmp_path):
    with make_client(tmp_path, rate_limit_per_minute=1) as c:
        assert c.post("/api/v1/classify", json={"question": "who was he"}).status_code == 200
        for path in POST_ROUTES:
            _assert_validation_shape(c.post(path, json={"question": ""}))
        _assert_validation_shape(
            c.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": "x"}]})
        )
        assert c.post("/api/v1/ask", json={"question": "who was he"}).status_code == 429


def test_staff_routes_are_rate_limited_even_with_a_wrong_key(tmp_path):
    with make_client(tmp_path, rate_limit_per_minute=2) as c:
        codes = [c.get("/api/v1/staff/stats", headers={"X-API-Key": "guess"}).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        assert c.get("/api/v1/staff/feedback.csv", headers={"X-API-Key": STAFF_KEY}).status_code == 429


# --- a body that never finishes --------------------------------------------------------------------------


async def _call_with_stalled_body(timeout_s: float, path: str = "/api/v1/ask") -> tuple[list[dict[str, Any]], float]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})

    chunks = [{"type": "http.request", "body": b'{"question": ', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await asyncio.sleep(3600)  # the rest of the body never comes
        raise AssertionError

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": [(b"content-length", b"100")]}
    start = time.monotonic()
    await BodyLimitMiddleware(app, max_bytes=16_384, timeout_s=timeout_s)(scope, receive, send)
    return sent, time.monotonic() - start


@pytest.mark.parametrize("path", ["/api/v1/ask", "/v1/chat/completions"])
def test_a_body_that_never_finishes_gets_408_and_a_close(path):
    sent, elapsed = asyncio.run(_call_with_stalled_body(0.2, path))
    assert 0.2 <= elapsed < 2
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    body = json.loads(sent[1]["body"])
    message = body["error"]["message"] if path.startswith("/v1/") else body["detail"]
    assert "did not arrive" in message
    assert set(body) == ({"error"} if path.startswith("/v1/") else {"detail"})


def test_the_body_timeout_does_not_cut_a_long_answer():
    async def run() -> list[int]:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()  # the whole body
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await receive()  # then a streamed answer waits for a disconnect, for longer than the timeout
            await send({"type": "http.response.body", "body": b"done"})

        messages = [{"type": "http.disconnect"}, {"type": "http.request", "body": b"{}", "more_body": False}]

        async def receive() -> dict[str, Any]:
            message = messages.pop()
            if message["type"] == "http.disconnect":
                await asyncio.sleep(0.3)
            return message

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await BodyLimitMiddleware(app, max_bytes=16_384, timeout_s=0.1)({"type": "http", "headers": []}, receive, send)
        return [m.get("status", 0) for m in sent]

    assert asyncio.run(run()) == [200, 0]


# --- the API docs work offline ----------------------------------------------------------------------------


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        url = values.get("src") or (values.get("href") if tag == "link" else None)
        if url:
            self.urls.append(url)
        self._in_script = tag == "script" and "src" not in values

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_the_docs_page_uses_only_files_the_app_serves(client):
    page = client.get("/docs")
    assert page.status_code == 200
    refs = _Refs()
    refs.feed(page.text)
    assert refs.inline_scripts == 0 and any(u.endswith("swagger-ui-bundle.js") for u in refs.urls)
    for url in refs.urls:
        assert url.startswith("/") and not url.startswith("//"), url  # same origin
        assert client.get(url).status_code == 200, url
    assert client.get(re.search(r'data-openapi-url="([^"]+)"', page.text)[1]).status_code == 200
    csp = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'self'" and "script-src" not in csp and "style-src" not in csp
    assert client.get("/redoc").status_code == 404  # ReDoc would need a CDN: not offered
