"""Loading everything the service needs at start-up, failing with a clear message on any bad artefact."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

from app.artifacts import ArtifactError
from app.generation.base import Generator
from app.generation.worker import GenerationWorker
from app.kiosk.corpus import Passage, load_corpus
from app.kiosk.embeddings import get_embedder
from app.kiosk.embeddings import resolve as resolve_embedder
from app.kiosk.faq import is_cached, load_faq
from app.kiosk.gate import RelevanceGate
from app.kiosk.language import LANGUAGES, Accents, Language, WordCounts, has_vietnamese_letters
from app.kiosk.pipeline import Services
from app.kiosk.retriever import Retriever
from app.kiosk.sessions import SessionStore
from app.kiosk.verified import (
    CuratedAnswers,
    Phrasing,
    VerifiedPair,
    example_questions,
    read_phrasings,
    read_verified,
    read_vietnamese,
    with_phrasings,
)
from app.metrics import Metrics
from app.prompt import estimate_tokens
from app.settings import Settings

log = logging.getLogger(__name__)
APP_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the `app` package


def build_generator(settings: Settings) -> Generator | None:
    if settings.generator == "none":
        return None
    if settings.generator == "openai":
        from app.generation.openai import OpenAIGenerator

        return OpenAIGenerator(
            settings.openai_base_url,
            settings.openai_model,
            settings.openai_api_key.get_secret_value(),
            settings.max_batch_size,
        )
    from app.generation.config import GeneratorConfig
    from app.generation.local import LocalGenerator

    return LocalGenerator.load(GeneratorConfig.from_settings(settings))


def faq_negatives(settings: Settings, verified: list[VerifiedPair]) -> list[str]:
    """Questions the FAQ must not answer: the verified questions about him, and the hard off-topic ones."""
    questions = [p.question for p in verified]
    if settings.faq_negatives_file.is_file():
        with settings.faq_negatives_file.open(encoding="utf-8", newline="") as f:
            questions += [row["question"] for row in csv.DictReader(f)]
    return questions


def language_counts(verified: list[VerifiedPair], phrasings: list[Phrasing], vietnamese: dict[str, str]) -> WordCounts:
    """Words of each language, from the verified questions and answers and their phrasings and translations."""
    texts: dict[Language, list[str]] = {"en": [t for p in verified for t in (p.question, p.answer)], "vi": [], "fr": []}
    texts["vi"] += vietnamese.values()
    for ph in phrasings:
        texts[ph.language if ph.language in LANGUAGES else "en"].append(ph.question)  # type: ignore[index]
    return WordCounts.from_texts(texts)


# What the FAQ's process runs (`python -c`, in the folder that holds this `app`): it reads the negatives first,
# so that the service's write to its stdin does not wait for scikit-learn's import.
_FIT_FAQ = """
import json, sys
from pathlib import Path
negatives = json.load(sys.stdin)
from app.kiosk.faq import fit_into_cache
fit_into_cache(Path(sys.argv[1]), negatives, Path(sys.argv[2]))
"""


@contextmanager
def faq_fit_aside(settings: Settings, negatives: list[str]) -> Iterator[subprocess.Popen[bytes] | None]:
    """The FAQ matcher fitted into the cache by a process of its own, when no earlier start left it there
    (None: it is there). The fit takes seconds, most of them in scipy's L-BFGS-B, which holds the GIL: beside
    the thread that loads the models (Python between torch's operations) it would stall it; as a process of
    its own it only shares the cores. If start-up fails meanwhile, the process is ended."""
    if is_cached(settings.faq_file, negatives, settings.cache_dir):
        yield None
        return
    args = [str(settings.faq_file.resolve()), str(settings.cache_dir.resolve())]
    child = subprocess.Popen([sys.executable, "-c", _FIT_FAQ, *args], stdin=subprocess.PIPE, cwd=APP_ROOT)
    try:
        assert child.stdin is not None
        with suppress(BrokenPipeError), child.stdin:  # a process that died early: its exit code says
            child.stdin.write(json.dumps(negatives).encode())
        yield child
    except BaseException:
        child.kill()
        raise
    finally:
        child.wait()


def load_models(
    settings: Settings,
    generator_factory: Callable[[Settings], Generator | None],
    passages: list[Passage],
    verified: list[VerifiedPair],
) -> tuple[Generator | None, Retriever]:
    """The encoder and the retriever (which embeds the verified answers), then the generator.

    Both models load on this one thread: transformers' lazy imports are not thread-safe (two threads importing
    from it at once failed with "cannot import name 'AutoConfig'"). The answers are embedded first, beside the
    FAQ's fit when there is one; the generator comes last (~2 s on 2 cores once transformers is imported).
    Measured on 2 cores: torch keeps all its threads beside the FAQ's process (with one, the embedding went on
    alone after the fit had ended), and the retriever stays here (built on the other thread while the generator
    loaded, its Python and the generator's took turns with the GIL: no sooner ready).
    """
    start = time.perf_counter()
    embedder = get_embedder(settings.embedder, settings.cache_dir) if settings.embedder else None
    retriever = Retriever(passages, verified, embedder=embedder)
    log.info("encoder and retriever ready in %.1fs", time.perf_counter() - start)
    return generator_factory(settings), retriever


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
    passages = load_corpus(settings.corpus)
    verified = read_verified(settings.qa_files)  # read once: curated answers, FAQ negatives, retrieval
    phrasings = read_phrasings(settings.phrasings_dir)
    # visitors' other phrasings, in three languages, are more keys to the same verified answers
    everything = with_phrasings(verified, phrasings)
    negatives = faq_negatives(settings, everything)
    # The models load on a thread of their own, the FAQ matcher is fitted in a process of its own (if not
    # cached), and the curated answers are indexed here meanwhile.
    with (
        faq_fit_aside(settings, negatives) as fitting,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-models") as pool,
    ):
        loading = pool.submit(load_models, settings, generator_factory, passages, everything)
        curated = CuratedAnswers(everything, settings.curated_threshold)
        vietnamese = read_vietnamese(settings.vi_answers_dir)
        languages = language_counts(verified, phrasings, vietnamese)
        accented = [p.question for p in phrasings if has_vietnamese_letters(p.question)]
        accents = Accents([*vietnamese.values(), *accented])
        if fitting is not None and fitting.wait():  # failed: load_faq fits it here
            log.warning("the FAQ's process failed (exit code %d): fitting the FAQ matcher here", fitting.returncode)
        faq = load_faq(settings.faq_file, negatives, settings.faq_threshold, settings.cache_dir)
        generator, retriever = loading.result()
    worker = None
    metrics = Metrics()
    if generator is not None:
        worker = GenerationWorker(generator, settings.queue_size, settings.max_batch_size, settings.batch_wait_ms)
        worker.on_batch = metrics.batches.observe
        t = time.perf_counter()
        worker.start(warmup=settings.warmup)
        log.info("generation worker started in %.1fs (warm-up: %s)", time.perf_counter() - t, settings.warmup)
    log.info(
        "services loaded in %.1fs (%d passages, gate threshold %.3f)",
        time.perf_counter() - start,
        len(passages),
        gate.threshold,
    )
    return Services(
        gate=gate,
        faq=faq,
        curated=curated,
        retriever=retriever,
        passages={p.id: p for p in passages},
        worker=worker,
        sessions=SessionStore(settings.session_turns, settings.session_ttl_s, settings.max_sessions),
        metrics=metrics,
        language=settings.ui_language,
        max_new_tokens=settings.max_new_tokens,
        request_timeout_s=settings.request_timeout_s,
        max_history_tokens=settings.max_history_tokens,
        count_tokens=getattr(generator, "count_tokens", estimate_tokens),
        vietnamese=vietnamese,
        detect=languages.detect,
        restore=accents.restore,
        examples=example_questions(verified, phrasings),
        clarify_below=settings.clarify_threshold,
        verbatim_from=settings.verbatim_from,
    )
