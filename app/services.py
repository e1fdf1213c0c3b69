"""Loading everything the service needs at start-up, failing with a clear message on any bad artefact."""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from app.artifacts import ArtifactError
from app.corpus import load_corpus
from app.curated import curated_answers
from app.embeddings import Embedder, get_embedder
from app.embeddings import resolve as resolve_embedder
from app.faq import load_faq
from app.gate import RelevanceGate
from app.generation import Generator
from app.grounding import load_hints
from app.metrics import Metrics
from app.pipeline import Services
from app.prompt import estimate_tokens
from app.retriever import Hint, Retriever
from app.sessions import SessionStore
from app.settings import Settings
from app.worker import GenerationWorker

log = logging.getLogger(__name__)


def build_generator(settings: Settings) -> Generator | None:
    if settings.generator == "none":
        return None
    if settings.generator == "openai":
        from app.openai_generator import OpenAIGenerator

        return OpenAIGenerator(settings.openai_base_url, settings.openai_model,
                               settings.openai_api_key.get_secret_value(), settings.max_batch_size)  # fmt: skip
    from app.local_generator import LocalGenerator

    return LocalGenerator.load(settings.base_model, settings.adapter_dir, quantize_4bit=settings.quantize_4bit,
                               cpu_int8=settings.cpu_int8, int4_kernel=settings.gpu_int4_kernel,
                               cache_dir=settings.base_cache_dir, gpu_loop=settings.gpu_decoding_loop,
                               max_batch=settings.max_batch_size, max_length=settings.gpu_max_length,
                               copy_bias=settings.copy_bias, draft_tokens=settings.draft_tokens)  # fmt: skip


def faq_negatives(settings: Settings, verified: list[Hint]) -> list[str]:
    """Questions the FAQ must not answer: the verified questions about him, and the hard off-topic ones."""
    questions = [h.question for h in verified]
    if settings.faq_negatives_file.is_file():
        with settings.faq_negatives_file.open(encoding="utf-8", newline="") as f:
            questions += [row["question"] for row in csv.DictReader(f)]
    return questions


def load_services(
    settings: Settings, generator_factory: Callable[[Settings], Generator | None] = build_generator
) -> Services:
    """Gate, FAQ, curated answers, retriever and generator; raises ArtifactError naming what is wrong."""
    start = time.perf_counter()
    missing = [str(p) for p in settings.qa_files if not p.is_file()]
    if missing:
        raise ArtifactError(f"QA file(s) not found: {', '.join(missing)}")
    gate = RelevanceGate.load(settings.gate_dir)  # first: a bad artefact stops start-up before anything slow
    if settings.embedder:
        resolve_embedder(settings.embedder)  # a missing encoder package too, not after minutes of loading

    # The models load (torch, mostly outside the GIL) while the FAQ matcher is fitted here. Both models load
    # on that one thread: transformers' lazy imports are not thread-safe (two threads importing from it at
    # once failed with "cannot import name 'AutoConfig'").
    def load_models() -> tuple[Generator | None, Embedder | None]:
        generator = generator_factory(settings)
        return generator, get_embedder(settings.embedder, settings.cache_dir) if settings.embedder else None

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-models") as pool:
        loading = pool.submit(load_models)
        passages = load_corpus(settings.corpus)
        verified = load_hints(settings.qa_files)  # read once: retrieval hints, FAQ negatives, curated answers
        faq = load_faq(settings.faq_file, faq_negatives(settings, verified), settings.faq_threshold, settings.cache_dir)
        curated = curated_answers(verified, settings.curated_threshold)
        generator, embedder = loading.result()
    retriever = Retriever(passages, verified, embedder=embedder)
    worker = None
    metrics = Metrics()
    if generator is not None:
        worker = GenerationWorker(generator, settings.queue_size, settings.max_batch_size, settings.batch_wait_ms)
        worker.on_batch = metrics.batches.observe
        t = time.perf_counter()
        worker.start(warmup=settings.warmup)
        log.info("generation worker started in %.1fs (warm-up: %s)", time.perf_counter() - t, settings.warmup)
    log.info("services loaded in %.1fs (%d passages, gate threshold %.3f)", time.perf_counter() - start,
             len(passages), gate.threshold)  # fmt: skip
    return Services(
        gate=gate, faq=faq, curated=curated, retriever=retriever, passages={p.id: p for p in passages},
        worker=worker, sessions=SessionStore(settings.session_turns, settings.session_ttl_s, settings.max_sessions),
        metrics=metrics, language=settings.ui_language, max_new_tokens=settings.max_new_tokens,
        request_timeout_s=settings.request_timeout_s, max_history_tokens=settings.max_history_tokens,
        count_tokens=getattr(generator, "count_tokens", estimate_tokens),
    )  # fmt: skip
