"""The generation worker: batches of requests that arrive together, a bounded queue, requests given up early."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.generation.base import GenerationRequest
from app.generation.worker import GenerationWorker, Overloaded
from tests.conftest import FakeGenerator


def _request(seconds: float = 30.0) -> GenerationRequest:
    return GenerationRequest("p", 16, time.monotonic() + seconds)


async def _gather(worker: GenerationWorker, requests: list[GenerationRequest]) -> list[object]:
    return await asyncio.gather(*(worker.submit(r) for r in requests), return_exceptions=True)


def test_requests_that_arrive_together_are_generated_as_batches_of_at_most_max_batch():
    fake = FakeGenerator(delay_s=0.01)
    worker = GenerationWorker(fake, queue_size=16, max_batch=4, batch_wait_ms=200)
    batches: list[int] = []
    worker.on_batch = batches.append
    worker.start(warmup=True)
    try:
        results = asyncio.run(_gather(worker, [_request() for _ in range(6)]))
    finally:
        worker.stop()
    assert [r.text for r in results] == [fake.text] * 6  # type: ignore[attr-defined]
    assert fake.batches == batches == [4, 2]


def test_a_full_queue_is_refused_at_once():
    fake = FakeGenerator(delay_s=0.05)
    worker = GenerationWorker(fake, queue_size=1, max_batch=1, batch_wait_ms=0)
    worker.start()
    try:
        results = asyncio.run(_gather(worker, [_request() for _ in range(4)]))
    finally:
        worker.stop()
    refused = [r for r in results if isinstance(r, Overloaded)]
    assert refused and len(refused) + fake.calls == 4


def test_requests_given_up_while_queued_are_never_generated():
    fake = FakeGenerator()
    worker = GenerationWorker(fake, queue_size=8, max_batch=8, batch_wait_ms=0)
    cancelled, late = _request(), _request(seconds=-1)
    cancelled.cancelled.set()
    worker.start()
    try:
        results = asyncio.run(_gather(worker, [cancelled, late]))
    finally:
        worker.stop()
    assert (results[0].text, results[0].finish) == ("", "cancelled")  # type: ignore[union-attr]
    assert isinstance(results[1], TimeoutError)  # past its deadline before it was queued: refused at once
    assert fake.calls == 0


def test_a_failed_warm_up_is_raised_where_the_worker_starts():
    class Broken(FakeGenerator):
        def warmup(self) -> None:
            raise RuntimeError("no model")

    with pytest.raises(RuntimeError, match="no model"):
        GenerationWorker(Broken(), queue_size=1, max_batch=1, batch_wait_ms=0).start(warmup=True)
