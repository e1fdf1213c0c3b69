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
from app.kiosk.grounding import Grounded, ground, readable
from app.kiosk.retriever import Retriever
from app.kiosk.sessions import SessionStore
from app.kiosk.verified import CuratedAnswers
from app.metrics import Metrics
from app.prompt import Turn, estimate_tokens, fit_history
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
    prompt_tokens: int = 0  # 0 unless a model ran and its generator counts them
    finish: Literal["stop", "length"] = "stop"  # "length": cut at the client's own, lower, token limit
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
    max_history_tokens: int = 256
    count_tokens: Callable[[str], int] = estimate_tokens  # the generator's tokenizer where it has one


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
        *,
        deadline: float | None = None,
        request_id: str | None = None,
        max_new_tokens: int | None = None,
    ) -> Answer:
        """Answer `question`; `history` (from a stateless client) replaces the session's memory.

        `deadline` (time.monotonic()) is best set when the request arrives, so that time spent waiting counts;
        `max_new_tokens` can only lower the server's cap.
        """
        start = time.perf_counter()
        if deadline is None:
            deadline = time.monotonic() + self.s.request_timeout_s
        session_id = session_id or SessionStore.new_id()
        answer = Answer("", False, 0.0, "off_topic", [], session_id, request_id or uuid.uuid4().hex)
        session = self.s.sessions.get(session_id)
        if history is not None:
            session.turns, session.related = history, bool(history)
        previous = session.turns[-1] if session.turns and session.related else None
        # The FAQ, the gate, curated answers and retrieval are CPU work (~10–30 ms): in a thread, so that the
        # event loop keeps taking requests (and noting when they arrived) under load. That wait counts too:
        # the client is answered at its deadline, its work still waiting or not.
        work = asyncio.to_thread(self._route, question, previous, session.turns if previous else [], answer, deadline)
        grounded = await asyncio.wait_for(work, deadline - time.monotonic())
        if grounded is not None:
            limit = min(max_new_tokens or self.s.max_new_tokens, self.s.max_new_tokens)
            await self._generate(grounded, answer, on_text, deadline, limit)
        if on_text and answer.route != "generated":
            on_text(answer.answer)
        if answer.route != "off_topic" and history is None:
            self.s.sessions.record(session_id, Turn(question, answer.answer), answer.related)
        answer.latency_ms = round((time.perf_counter() - start) * 1000, 2)
        return answer

    def _route(self, question: str, previous: Turn | None, history: list[Turn], answer: Answer,
               deadline: float) -> Grounded | None:  # fmt: skip
        """Fills in `answer` from the FAQ, the gate or a curated answer; else returns the prompt to generate from."""
        if time.monotonic() >= deadline:  # its client has had its 503: skip the work
            raise TimeoutError("the deadline passed before the question was looked at")
        faq = self.s.faq.match(question)
        if faq is not None:
            # Visit questions skip the gate: `relevance` is then the FAQ match score.
            answer.answer, answer.route, answer.related, answer.relevance = faq.entry.answer, "faq", True, faq.score
            return None
        answer.relevance = self.relevance(question, previous)
        answer.related = answer.relevance >= self.s.gate.threshold
        self.s.metrics.gate.labels("related" if answer.related else "not_related").inc()
        if not answer.related:
            answer.answer = strings(self.s.language)["off_topic"]
            answer.suggestions = suggestions(self.s.language)[:3]
            return None
        curated = self.s.curated.match(question) if not history else None
        if curated is not None:
            answer.answer, answer.route = curated.pair.answer, "curated"
            answer.sources = [self.s.passages[i] for i in curated.pair.source_ids if i in self.s.passages]
            return None
        return ground(question, self.s.retriever, fit_history(history, self.s.max_history_tokens, self.s.count_tokens))

    async def _generate(self, grounded: Grounded, answer: Answer, on_text: Callable[[str], None] | None,
                        deadline: float, max_new_tokens: int) -> None:  # fmt: skip
        if self.s.worker is None:
            raise RuntimeError("no generator is configured (KIOSK_GENERATOR=none)")
        request = GenerationRequest(grounded.prompt, max_new_tokens, deadline, on_text,
                                    copy_from=tuple(grounded.context.sentences))  # fmt: skip
        result = await self.s.worker.submit(request)
        self.s.metrics.tokens.inc(result.tokens)
        # Past the deadline the client is told to retry: a late answer, or a retrieved sentence standing in
        # for an answer the deadline cut short, must not arrive as a 200.
        if result.finish in ("deadline", "cancelled") or time.monotonic() >= deadline:
            raise TimeoutError(f"generation stopped ({result.finish}) at the deadline")
        answer.route, answer.tokens, answer.prompt_tokens = "generated", result.tokens, result.prompt_tokens
        answer.sources = grounded.context.passages
        if result.finish == "length" and max_new_tokens < self.s.max_new_tokens:
            answer.answer, answer.finish = result.text, "length"  # the client asked for this few tokens
            return
        answer.answer, fell_back = readable(result.text, grounded.context)
        if fell_back:
            self.s.metrics.fallbacks.inc()
