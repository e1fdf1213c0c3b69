"""Nearest-phrasing lookup by character n-gram TF-IDF cosine: used by the staff FAQ and the curated answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from app.text import fold_words

T = TypeVar("T")


@dataclass(frozen=True)
class Match(Generic[T]):
    item: T
    score: float
    phrasing: str


class PhraseMatcher(Generic[T]):
    """Each item has one or more phrasings; a query gets the item of its closest phrasing."""

    def __init__(self, items: Sequence[T], phrasings: Sequence[Sequence[str]], threshold: float) -> None:
        self.items = list(items)
        self.threshold = threshold
        self._owner = [i for i, group in enumerate(phrasings) for _ in group]
        self._phrasings = [p for group in phrasings for p in group]
        self._vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
        self._matrix = (
            self._vectorizer.fit_transform([fold_words(p) for p in self._phrasings]) if self._phrasings else None
        )

    def best(self, query: str) -> Match[T] | None:
        """The closest item and its score, whatever the score."""
        if self._matrix is None or not fold_words(query):
            return None
        scores = (self._matrix @ self._vectorizer.transform([fold_words(query)]).T).toarray().ravel()
        i = int(np.argmax(scores))
        return Match(self.items[self._owner[i]], float(scores[i]), self._phrasings[i])

    def match(self, query: str) -> Match[T] | None:
        """The item whose phrasing is close enough to `query`, or None."""
        found = self.best(query)
        return found if found and found.score >= self.threshold else None
