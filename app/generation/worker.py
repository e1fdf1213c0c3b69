"""One generation worker with a bounded queue: requests that arrive together are generated as one batch."""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.generation.base import GenerationRequest, GenerationResult, Generator
from app.generation.stopping import interrupted

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """The queue is full, or the accelerator ran out of memory: the client should retry later (503)."""


@dataclass
class _Job:
    request: GenerationRequest
    future: asyncio.Future[GenerationResult]
    loop: asyncio.AbstractEventLoop


class GenerationWorker:
    """A single thread owns the model; asyncio handlers wait on futures and never block the event loop."""

    def __init__(self, generator: Generator, queue_size: int, max_batch: int, batch_wait_ms: int) -> None:
        self.generator = generator
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_ms / 1000
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="generation-worker", daemon=True)
        self.busy = 0
        self.on_batch: Callable[[int], None] | None = None
        _import_cudagraph_trees()

    @property
    def depth(self) -> int:
        """Requests waiting or being generated."""
        return self._queue.qsize() + self.busy

    def is_full(self) -> bool:
        return self._queue.full()

    def start(self, warmup: bool = False, timeout: float = 900.0) -> None:
        """Start the thread; with `warmup`, first generate once on it and re-raise any failure here.

        The warm-up must run on the serving thread: CUDA graphs captured by torch.compile belong to the
        thread that recorded them.
        """
        self._warmup = warmup
        self._ready = threading.Event()
        self._warmup_error: BaseException | None = None
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the generator did not warm up in time")
        if self._warmup_error is not None:
            raise self._warmup_error

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop."""
        self._stop.set()
        self._thread.join(timeout)

    async def submit(self, request: GenerationRequest) -> GenerationResult:
        """The result, or TimeoutError at the request's deadline, whether it is still queued or being generated."""
        if time.monotonic() >= request.deadline:
            raise TimeoutError("the deadline passed before the request was queued")
        loop = asyncio.get_running_loop()
        job = _Job(request, loop.create_future(), loop)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Overloaded("the generation queue is full") from None
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), request.deadline - time.monotonic())
        except (TimeoutError, asyncio.CancelledError):
            # The deadline passed or the client went away: a queued job is skipped when the worker reaches
            # it, a running row stops within a step, and the client is answered now, not after the batch.
            request.cancelled.set()
            raise

    def _collect(self) -> list[_Job]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        jobs = [first]
        until = time.monotonic() + self.batch_wait_s
        while len(jobs) < self.max_batch:
            remaining = until - time.monotonic()
            try:
                jobs.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return jobs

    @staticmethod
    def _live(jobs: list[_Job]) -> list[_Job]:
        """The jobs still wanted; one whose client went away or whose deadline passed while queued is resolved."""
        live = []
        for job in jobs:
            cause = interrupted(job.request)
            if cause is None:
                live.append(job)
            else:
                _resolve(job, GenerationResult("", 0, cause))
        return live

    def _run(self) -> None:
        _prepare_thread_for_cuda_graphs()
        try:
            if self._warmup:
                self.generator.warmup()
        except BaseException as exc:
            self._warmup_error = exc
            return
        finally:
            self._ready.set()
        while not (self._stop.is_set() and self._queue.empty()):
            live = self._live([j for j in self._collect() if not j.future.done()])
            if not live:
                continue
            self.busy = len(live)
            try:
                results = self.generator.generate_batch([j.request for j in live])
                for j, r in zip(live, results, strict=True):
                    _resolve(j, r)
            except Exception as exc:
                error = _classify(exc)
                for j in live:
                    _resolve(j, error)
            finally:
                self.busy = 0
                if self.on_batch:
                    self.on_batch(len(live))


def _import_cudagraph_trees() -> None:
    """Import torch's CUDA-graph trees on the thread that builds the worker (the main one), on a GPU only.

    The module registers its thread-local state on the thread that imports it first; imported first on a
    worker thread, compiled decoding on the main thread fails later (AssertionError in get_obj, measured
    when a benchmark ran the GPU loop's workers before compiled `generate`).
    """
    import torch

    if torch.cuda.is_available():
        import torch._inductor.cudagraph_trees


def _prepare_thread_for_cuda_graphs() -> None:
    """torch.compile's CUDA-graph trees keep thread-local state that only the main thread gets.

    Without it, compiled ("reduce-overhead") decoding fails on this worker thread with an AssertionError
    in cudagraph_trees.get_obj. Private API, so guarded: if it moves, compiled decoding is what breaks.
    """
    try:
        from torch._inductor import cudagraph_trees
    except Exception:
        return
    local = cudagraph_trees.local
    if not hasattr(local, "tree_manager_containers"):
        local.tree_manager_containers = {}
        local.tree_manager_locks = collections.defaultdict(threading.Lock)


def _classify(exc: Exception) -> Exception:
    """Out of memory becomes Overloaded (503) after freeing the cache; the service lives on."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            log.error("GPU out of memory during generation; cache emptied")
            torch.cuda.empty_cache()
            return Overloaded("the GPU is out of memory")
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    log.exception("generation failed", exc_info=exc)
    return exc


def _resolve(job: _Job, outcome: GenerationResult | Exception) -> None:
    def set_outcome() -> None:
        if job.future.done():
            return
        if isinstance(outcome, Exception):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)

    job.loop.call_soon_threadsafe(set_outcome)
