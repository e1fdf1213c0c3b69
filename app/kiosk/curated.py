"""Verified question–answer pairs: a visitor's question close enough to one gets its answer at once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from app.kiosk.matcher import PhraseMatcher
from app.kiosk.retriever import Hint


@dataclass(frozen=True)
class CuratedAnswer:
    answer: str
    source_ids: tuple[str, ...]


def curated_answers(pairs: list[Hint], threshold: float) -> PhraseMatcher[CuratedAnswer]:
    """Questions that share an answer are phrasings of one curated answer."""
    phrasings: dict[CuratedAnswer, list[str]] = defaultdict(list)
    for pair in pairs:
        phrasings[CuratedAnswer(pair.answer, pair.source_ids)].append(pair.question)
    items = list(phrasings)
    return PhraseMatcher(items, [phrasings[i] for i in items], threshold)
