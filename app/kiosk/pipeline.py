"""The way of a question: staff FAQ -> relevance gate -> curated answer -> grounded generation -> clean-up."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from app.generation.base import GenerationRequest
from app.generation.worker import GenerationWorker
from app.kiosk.corpus import Passage
from app.kiosk.faq import FAQ
from app.kiosk.gate import RelevanceGate
from app.kiosk.grounding import ground, readable
from app.kiosk.retriever import Retriever
from app.kiosk.sessions import SessionStore
from app.kiosk.verified import CuratedAnswers
from app.metrics import Metrics
from app.prompt import Turn
from app.strings import strings, suggestions

log = logging.getLogger(__name__)
Route = Literal["faq", "curated", "generated", "off_topic"]
# A short question that leans on the previous one ("and his father?", "what happened after that?").
_FOLLOW_UP = re.compile(r"^(and|but|so|then|what about|how about|after|before)\b|\b(he|his|him|that|this|it|they|"
                        r"them|there|then|she|her)\b", re.I)  # fmt: skip


@dataclass
class Answer:
    answer: str
    related: bool
    relevance: float
    route: Route
    sources: list[Passage]
    session_id: str
    request_id: str
    latency_ms: float = 0.0
    tokens: int = 0
    suggestions: list[str] = field(default_factory=list)


@dataclass
class Services:
    """Everything loaded at start-up; routes reach it through `app.state.services`."""

    gate: RelevanceGate
    faq: FAQ
    curated: CuratedAnswers
    retriever: Retriever
    passages: dict[str, Passage]
    worker: GenerationWorker | None
    sessions: SessionStore
    metrics: Metrics
    language: str = "en"
    max_new_tokens: int = 64
    request_timeout_s: float = 30.0


class Kiosk:
    """Answers one question; generation is the only step that waits for the worker."""

    def __init__(self, services: Services) -> None:
        self.s = services

    def relevance(self, question: str, previous: Turn | None) -> float:
        """The gate's score; a short follow-up is also scored together with the question before it."""
        own = self.s.gate.relevance(question)
        if previous is not None and len(question.split()) <= 8 and _FOLLOW_UP.search(question):
            return max(own, self.s.gate.relevance(f"{previous.question} {question}"))
        return own

    async def ask(
        self,
        question: str,
        session_id: str | None = None,
        on_text: Callable[[str], None] | None = None,
        history: list[Turn] | None = None,
    ) -> Answer:
        """Answer `question`; `history` (from a stateless client) replaces the session's memory."""
        start = time.perf_counter()
        session_id = session_id or SessionStore.new_id()
        answer = Answer("", False, 0.0, "off_topic", [], session_id, uuid.uuid4().hex)
        session = self.s.sessions.get(session_id)
        if history is not None:
            session.turns, session.related = history, bool(history)
        previous = session.turns[-1] if session.turns and session.related else None
        faq = self.s.faq.match(question)
        if faq is not None:
            # Visit questions skip the gate: `relevance` is then the FAQ match score.
            answer.answer, answer.route, answer.related, answer.relevance = faq.entry.answer, "faq", True, faq.score
        else:
            answer.relevance = self.relevance(question, previous)
            answer.related = answer.relevance >= self.s.gate.threshold
            self.s.metrics.gate.labels("related" if answer.related else "not_related").inc()
            if not answer.related:
                answer.answer = strings(self.s.language)["off_topic"]
                answer.suggestions = suggestions(self.s.language)[:3]
            else:
                await self._answer_related(question, session.turns if previous else [], answer, on_text)
        if on_text and answer.route != "generated":
            on_text(answer.answer)
        if answer.route != "off_topic" and history is None:
            self.s.sessions.record(session_id, Turn(question, answer.answer), answer.related)
        answer.latency_ms = round((time.perf_counter() - start) * 1000, 2)
        return answer

    async def _answer_related(self, question: str, history: list[Turn], answer: Answer,
                              on_text: Callable[[str], None] | None) -> None:  # fmt: skip
        curated = self.s.curated.match(question) if not history else None
        if curated is not None:
            answer.answer, answer.route = curated.pair.answer, "curated"
            answer.sources = [self.s.passages[i] for i in curated.pair.source_ids if i in self.s.passages]
            return
        if self.s.worker is None:
            raise RuntimeError("no generator is configured (KIOSK_GENERATOR=none)")
        # retrieval encodes the question (~10 ms): off the event loop, which serves other visitors meanwhile
        grounded = await asyncio.to_thread(ground, question, self.s.retriever, tuple(history))
        request = GenerationRequest(grounded.prompt, self.s.max_new_tokens, time.monotonic() + self.s.request_timeout_s,
                                    on_text, copy_from=tuple(grounded.context.sentences))  # fmt: skip
        result = await self.s.worker.submit(request)
        self.s.metrics.tokens.inc(result.tokens)
        if result.finish in ("deadline", "cancelled") and not result.text:
            raise TimeoutError(f"generation stopped ({result.finish}) before any text")
        text, fell_back = readable(result.text, grounded.context)
        answer.answer, answer.route, answer.tokens = text, "generated", result.tokens
        if fell_back:
            self.s.metrics.fallbacks.inc()
        answer.sources = grounded.context.passages
