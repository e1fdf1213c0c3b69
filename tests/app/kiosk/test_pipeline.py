"""The way of a question through `Kiosk.ask`, with a scripted gate and FAQ, real curated answers and retrieval."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from app.generation.worker import GenerationWorker
from app.kiosk.corpus import Passage
from app.kiosk.faq import FAQEntry, FAQMatch
from app.kiosk.pipeline import Kiosk, Services
from app.kiosk.retriever import Retriever
from app.kiosk.sessions import SessionStore
from app.kiosk.verified import CuratedAnswers, VerifiedPair
from app.metrics import Metrics
from tests.conftest import FakeGenerator

PASSAGE = Passage("kb-1", "museum", "Life", "Youth", "His father was a Confucian scholar. He left in 1911.", "", "")
PAIR = VerifiedPair("who was his father", "His father was a Confucian scholar.", ("kb-1",))
HOURS = FAQEntry("hours", ("when does the museum open",), "Open 8:00-17:00.")


class Gate:
    """Scores from a script: 0.9 for questions about him, 0.1 for anything else."""

    threshold = 0.5

    def __init__(self) -> None:
        self.asked: list[str] = []

    def relevance(self, question: str) -> float:
        self.asked.append(question)
        return 0.9 if any(w in question for w in ("father", "he ", "his")) else 0.1


class Faq:
    def match(self, question: str) -> FAQMatch | None:
        return FAQMatch(HOURS, 0.97) if "museum open" in question else None


@pytest.fixture()
def kiosk() -> Iterator[Kiosk]:
    fake = FakeGenerator(text="He left for France in 1911.")
    worker = GenerationWorker(fake, queue_size=4, max_batch=1, batch_wait_ms=0)
    worker.start()
    services: Any = Services(
        gate=Gate(), faq=Faq(), curated=CuratedAnswers([PAIR], 0.8), retriever=Retriever([PASSAGE], [PAIR]),
        passages={PASSAGE.id: PASSAGE}, worker=worker, sessions=SessionStore(3, 600, 100), metrics=Metrics(),
    )  # fmt: skip
    yield Kiosk(services)
    worker.stop()


def test_a_visit_question_is_answered_from_the_faq_without_the_gate(kiosk):
    answer = asyncio.run(kiosk.ask("when does the museum open?"))
    assert (answer.route, answer.answer, answer.relevance) == ("faq", HOURS.answer, 0.97)
    assert kiosk.s.gate.asked == []


def test_an_off_topic_question_gets_suggestions_and_is_not_remembered(kiosk):
    answer = asyncio.run(kiosk.ask("best pho in town?", session_id="s" * 16))
    assert answer.route == "off_topic" and not answer.related and len(answer.suggestions) == 3
    assert kiosk.s.sessions.get("s" * 16).turns == []


def test_a_verified_question_gets_its_curated_answer_and_sources(kiosk):
    answer = asyncio.run(kiosk.ask("Who was his father?"))
    assert (answer.route, answer.answer, answer.sources) == ("curated", PAIR.answer, [PASSAGE])


def test_a_follow_up_is_scored_with_the_question_before_and_generated_with_it(kiosk):
    session = "f" * 16
    asyncio.run(kiosk.ask("who was his father", session_id=session))
    follow_up = asyncio.run(kiosk.ask("and after that?", session_id=session))  # 0.1 on its own
    assert kiosk.s.gate.asked[-1] == "who was his father and after that?"
    assert follow_up.related and follow_up.route == "generated"  # no curated answer inside a conversation
    assert follow_up.answer == "He left for France in 1911." and follow_up.sources == [PASSAGE]
    assert [t.question for t in kiosk.s.sessions.get(session).turns] == ["who was his father", "and after that?"]


def test_without_a_generator_a_new_related_question_is_an_error(kiosk):
    kiosk.s.worker = None
    with pytest.raises(RuntimeError, match="no generator"):
        asyncio.run(kiosk.ask("what did he do in 1911?"))
