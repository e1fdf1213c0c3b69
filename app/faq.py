"""The staff-edited FAQ (opening hours, tickets, toilets…): loading and similarity matching."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer

from app.artifacts import ArtifactError
from app.text import fold_words


@dataclass(frozen=True)
class FAQEntry:
    id: str
    questions: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class FAQMatch:
    entry: FAQEntry
    score: float


class FAQ:
    """Matches a visitor's question to the closest FAQ phrasing by character n-gram TF-IDF cosine."""

    def __init__(self, entries: list[FAQEntry], threshold: float = 0.55) -> None:
        self.entries = entries
        self.threshold = threshold
        self._owner: list[int] = [i for i, e in enumerate(entries) for _ in e.questions]
        phrasings = [fold_words(q) for e in entries for q in e.questions]
        self._vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
        self._matrix = self._vectorizer.fit_transform(phrasings) if phrasings else None

    def best(self, question: str) -> FAQMatch | None:
        """The closest entry and its score, whatever the score."""
        if self._matrix is None:
            return None
        scores = (self._matrix @ self._vectorizer.transform([fold_words(question)]).T).toarray().ravel()
        i = int(np.argmax(scores))
        return FAQMatch(self.entries[self._owner[i]], float(scores[i]))

    def match(self, question: str) -> FAQMatch | None:
        """The entry that answers `question`, or None when no phrasing is close enough."""
        found = self.best(question)
        return found if found and found.score >= self.threshold else None


def load_faq(path: Path, threshold: float = 0.55) -> FAQ:
    """Read the FAQ YAML, failing with a message that staff can act on."""
    if not path.is_file():
        raise ArtifactError(f"FAQ file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"FAQ file {path} is not valid YAML: {exc}") from exc
    entries = []
    seen: set[str] = set()
    for n, raw in enumerate(data.get("entries") or [], 1):
        if not isinstance(raw, dict):
            raise ArtifactError(f"{path}: entry {n} is not a mapping")
        entry_id = str(raw.get("id") or "").strip()
        questions = tuple(str(q).strip() for q in raw.get("questions") or [] if str(q).strip())
        answer = str(raw.get("answer") or "").strip()
        if not entry_id or not questions or not answer:
            raise ArtifactError(f"{path}: entry {n} needs an id, at least one question and an answer")
        if entry_id in seen:
            raise ArtifactError(f"{path}: entry id {entry_id!r} appears twice")
        seen.add(entry_id)
        entries.append(FAQEntry(entry_id, questions, answer))
    return FAQ(entries, threshold)
