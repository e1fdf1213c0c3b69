"""Verified question–answer pairs: a visitor's question close enough to one gets its answer at once."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from app.matcher import PhraseMatcher


@dataclass(frozen=True)
class CuratedAnswer:
    answer: str
    source_ids: tuple[str, ...]


def load_curated(paths: list[Path], threshold: float) -> PhraseMatcher[CuratedAnswer]:
    """Questions that share an answer are phrasings of one curated answer."""
    phrasings: dict[CuratedAnswer, list[str]] = defaultdict(list)
    for path in paths:
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                phrasings[CuratedAnswer(row["answer"], tuple(row["source_ids"].split()))].append(row["question"])
    items = list(phrasings)
    return PhraseMatcher(items, [phrasings[i] for i in items], threshold)
