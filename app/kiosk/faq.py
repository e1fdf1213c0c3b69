"""The staff-edited FAQ (opening hours, tickets, toilets…): loading, and a matcher trained at start-up.

Staff edit only the YAML. At start-up a small classifier learns the FAQ's phrasings against questions
that must not be taken for visit questions (the QA questions about Ho Chi Minh, off-topic questions),
so "can I see his body?" reaches the mausoleum entry while "when did he die?" does not reach any entry.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import astuple, dataclass
from pathlib import Path

import joblib
import numpy as np
import sklearn
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from app.artifacts import ArtifactError, atomic_write_bytes, atomic_write_text, sha256_file, verify_file
from app.text import fold

log = logging.getLogger(__name__)
NONE = "__none__"


@dataclass(frozen=True)
class FAQEntry:
    id: str
    questions: tuple[str, ...]
    answer: str
    answer_vi: str = ""  # shown to Vietnamese visitors
    verified: bool = False  # staff confirmed the entry; an unverified one is shown with "please confirm"


@dataclass(frozen=True)
class FAQMatch:
    entry: FAQEntry
    score: float


class FAQ:
    """Maps a question to an FAQ entry, or to none of them."""

    def __init__(self, entries: list[FAQEntry], negatives: list[str], threshold: float = 0.5) -> None:
        self.entries = entries
        self.threshold = threshold
        self._by_id = {e.id: e for e in entries}
        texts = [q for e in entries for q in e.questions] + list(negatives)
        labels = [e.id for e in entries for _ in e.questions] + [NONE] * len(negatives)
        features = FeatureUnion(
            [
                ("words", TfidfVectorizer(preprocessor=fold, ngram_range=(1, 2), sublinear_tf=True)),
                (
                    "chars",
                    TfidfVectorizer(preprocessor=fold, analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
                ),
            ]
        )
        classifier = LogisticRegression(C=10.0, class_weight="balanced", max_iter=3000)
        self._pipeline = Pipeline([("features", features), ("classifier", classifier)]).fit(texts, labels)
        self._classes = list(self._pipeline.classes_)

    def best(self, question: str) -> FAQMatch | None:
        """The most likely entry and its probability, or None when "no entry" is most likely."""
        probabilities = self._pipeline.predict_proba([question])[0]
        i = int(np.argmax(probabilities))
        label = self._classes[i]
        return None if label == NONE else FAQMatch(self._by_id[label], float(probabilities[i]))

    def match(self, question: str) -> FAQMatch | None:
        found = self.best(question)
        return found if found and found.score >= self.threshold else None


def read_entries(path: Path) -> list[FAQEntry]:
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
        verified = raw.get("verified", False)
        if not isinstance(verified, bool):
            raise ArtifactError(f"{path}: entry {entry_id!r}: verified must be true or false")
        entries.append(FAQEntry(entry_id, questions, answer, str(raw.get("answer_vi") or "").strip(), verified))
    if not entries:
        raise ArtifactError(f"{path}: no FAQ entry")
    return entries


_CACHE: dict[str, FAQ] = {}


def _digest(entries: list[FAQEntry], negatives: list[str]) -> str:
    """What a fit depends on: the entries, the negatives and scikit-learn's version."""
    data = json.dumps([[astuple(e) for e in entries], negatives, sklearn.__version__]).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def load_faq(path: Path, negatives: list[str], threshold: float = 0.5, cache_dir: Path | None = None) -> FAQ:
    """Read and fit, or reuse the fit made for the same FAQ and negatives (in this process or on disk).

    Fitting takes seconds of start-up; the FAQ changes only when staff edit it. A cached fit is a joblib
    file, so it is loaded only if its hash matches the one recorded when this service wrote it.
    """
    entries = read_entries(path)
    digest = _digest(entries, negatives)
    if digest in _CACHE:
        _CACHE[digest].threshold = threshold
        return _CACHE[digest]
    faq = _read_cached(cache_dir, digest) if cache_dir else None
    if faq is None:
        faq = FAQ(entries, negatives, threshold)
        if cache_dir:
            _write_cached(cache_dir, digest, faq)
    faq.threshold = threshold
    _CACHE.clear()
    _CACHE[digest] = faq
    return faq


def is_cached(path: Path, negatives: list[str], cache_dir: Path) -> bool:
    """Whether `load_faq` would find a fit for this FAQ and these negatives without fitting (on disk, a file
    whose hash is checked only when it is read: a damaged one is fitted again then)."""
    digest = _digest(read_entries(path), negatives)
    return digest in _CACHE or (cache_dir / f"faq-{digest}.joblib").is_file()


def fit_into_cache(path: Path, negatives: list[str], cache_dir: Path) -> None:
    """Fit the matcher and leave it in `cache_dir` for `load_faq`: what start-up runs in a process of its own."""
    load_faq(path, negatives, cache_dir=cache_dir)


def _read_cached(cache_dir: Path, digest: str) -> FAQ | None:
    model, record = cache_dir / f"faq-{digest}.joblib", cache_dir / f"faq-{digest}.sha256"
    if not (model.is_file() and record.is_file()):
        return None
    try:
        verify_file(model, record.read_text(encoding="utf-8").strip())  # a damaged file is never loaded
        faq = joblib.load(model)
    except Exception as exc:  # damaged, or written by a version whose classes lived elsewhere: a miss
        log.warning("FAQ cache %s not used (%s): fitting again", model.name, type(exc).__name__)
        return None
    return faq if isinstance(faq, FAQ) else None


def _write_cached(cache_dir: Path, digest: str, faq: FAQ) -> None:
    buf = io.BytesIO()
    joblib.dump(faq, buf)
    model = cache_dir / f"faq-{digest}.joblib"
    atomic_write_bytes(model, buf.getvalue())
    atomic_write_text(cache_dir / f"faq-{digest}.sha256", sha256_file(model))
