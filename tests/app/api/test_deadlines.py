"""Deadlines: counted from a request's arrival, kept while it waits and while it is generated, and under load."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from app.generation.base import GenerationRequest, GenerationResult
from app.generation.worker import GenerationWorker
from tests.app.api.test_api import NOVEL_RELATED
from tests.app.conftest import make_client
from tests.conftest import FakeGenerator

# A response decided just before its deadline is still recorded (a committed SQLite write) and has to travel
# back to the client: on a busy 2-core machine, a few hundred milliseconds.
SLACK_S = 0.5


def test_an_answer_cut_short_by_the_deadline_is_a_503_not_a_retrieved_sentence(tmp_path):
    slow = FakeGenerator(delay_s=0.2)  # 11 words: 2.2 s, cut after ~5 by the deadline
    with make_client(tmp_path, slow, request_timeout_s=1.0) as c:
        start = time.monotonic()
        r = c.post("/api/v1/ask", json={"question": NOVEL_RELATED})
        wall = time.monotonic() - start
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    assert wall < 1.0 + SLACK_S


def test_the_deadline_counts_the_time_before_generation(tmp_path, monkeypatch):
    with make_client(tmp_path, FakeGenerator(), request_timeout_s=0.6) as c:
        retriever = c.app.state.services.retriever
        context = retriever.context
        monkeypatch.setattr(retriever, "context", lambda *a: time.sleep(1.0) or context(*a))  # a backlog, say
        start = time.monotonic()
        r = c.post("/api/v1/ask", json={"question": NOVEL_RELATED})
        wall = time.monotonic() - start
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert wall < 0.6 + SLACK_S  # answered at the deadline, not when the slow step was done


def test_a_queued_request_is_refused_at_its_deadline_not_after_the_batch_before_it():
    fake = FakeGenerator(delay_s=0.2)  # one answer: 2.2 s
    worker = GenerationWorker(fake, queue_size=4, max_batch=1, batch_wait_ms=0)
    worker.start()

    async def run() -> tuple[float, GenerationResult]:
        first = asyncio.create_task(worker.submit(GenerationRequest("p", 64, time.monotonic() + 30)))
        await asyncio.sleep(0.1)  # the first one is being generated
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await worker.submit(GenerationRequest("p", 64, time.monotonic() + 0.5))
        waited = time.monotonic() - start
        return waited, await first

    try:
        waited, first = asyncio.run(run())
    finally:
        worker.stop()
    assert waited < 1.0
    assert first.finish == "stop" and fake.calls == 1  # the refused request was never generated


async def _many_clients(app: object, n: int) -> list[tuple[int, float, str | None]]:
    """n visitors at once, each timing its own answer (in this loop, with the app: no thread stands between)."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://kiosk", timeout=60) as client:

        async def one(i: int) -> tuple[int, float, str | None]:
            start = time.monotonic()
            r = await client.post("/api/v1/ask", json={"question": f"{NOVEL_RELATED} ({i})"})
            return r.status_code, time.monotonic() - start, r.headers.get("Retry-After")

        return await asyncio.gather(*(one(i) for i in range(n)))


def test_a_hundred_clients_get_no_200_after_the_deadline(tmp_path):
    deadline = 3.0
    slow = FakeGenerator(delay_s=0.05)  # ~0.55 s a batch of 8: far fewer answers in time than visitors
    with make_client(tmp_path, slow, request_timeout_s=deadline, embedder="") as c:  # words-only retrieval
        outcomes = asyncio.run(_many_clients(c.app, 100))
    statuses = [status for status, _, _ in outcomes]
    assert set(statuses) <= {200, 503}, statuses
    late = sorted(round(wall, 2) for status, wall, _ in outcomes if status == 200 and wall > deadline + SLACK_S)
    assert late == []
    assert all(retry for status, _, retry in outcomes if status == 503)
    assert 200 in statuses and 503 in statuses  # some answered in time, the rest refused
