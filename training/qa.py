"""The question–answer files: reading, writing and the fact check that ties an answer to its passages."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from app.artifacts import atomic_write_text
from app.text import fold_words

COLUMNS = ["question", "answer", "topic", "source_ids"]
QA_DIR = Path("data/qa")
SOURCE_DIR = QA_DIR / "source"
TRAIN_CSV = QA_DIR / "train.csv"
TEST_CSV = QA_DIR / "test.csv"
MUSEUM_CSV = QA_DIR / "museum.csv"
TOPICS = (
    "early-life",
    "names",
    "travels",
    "youth-league-party",
    "viet-minh",
    "august-revolution",
    "first-indochina-war",
    "presidency",
    "death",
    "memorials",
    "personal-life",
    "legacy",
)
MAX_QUESTION_CHARS = 500
MAX_ANSWER_WORDS = 50
MAX_ANSWER_SENTENCES = 2


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    topic: str
    source_ids: tuple[str, ...]
    file: str = ""
    row: int = 0  # line of the CSV file (the header is line 1)


class QAFileError(ValueError):
    """A QA file that cannot be read at all (encoding, header)."""


def read_pairs(path: Path) -> list[QAPair]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise QAFileError(f"{path}:{line}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    if reader.fieldnames != COLUMNS:
        raise QAFileError(f"{path}:1: header must be {','.join(COLUMNS)}, found {reader.fieldnames}")
    return [
        QAPair(
            question=(r["question"] or "").strip(),
            answer=(r["answer"] or "").strip(),
            topic=(r["topic"] or "").strip(),
            source_ids=tuple((r["source_ids"] or "").split()),
            file=str(path),
            row=reader.line_num,
        )
        for r in reader
    ]


def write_pairs(path: Path, pairs: list[QAPair]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for p in pairs:
        writer.writerow([p.question, p.answer, p.topic, " ".join(p.source_ids)])
    atomic_write_text(path, buf.getvalue())


def source_files(topic: str | None = None) -> list[Path]:
    return sorted(SOURCE_DIR.glob(f"{topic or '*'}.csv"))


def load_source_pairs() -> list[QAPair]:
    return [p for f in source_files() for p in read_pairs(f)]


def question_key(question: str) -> str:
    """Two questions with the same key are duplicates."""
    return fold_words(question)


def answer_key(answer: str) -> str:
    """Two answers with the same key are one answer: the split keeps all its questions on one side."""
    return fold_words(answer)


def _trigrams(text: str) -> set[str]:
    padded = f"  {text} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class NearDuplicates:
    """Near-duplicate test for short questions: same words, or nearly the same characters."""

    def __init__(self, word_threshold: float = 0.8, char_threshold: float = 0.85) -> None:
        self.word_threshold = word_threshold
        self.char_threshold = char_threshold

    def features(self, question: str) -> tuple[set[str], set[str]]:
        key = question_key(question)
        return set(key.split()), _trigrams(key)

    def similar(self, a: tuple[set[str], set[str]], b: tuple[set[str], set[str]]) -> bool:
        return _jaccard(a[0], b[0]) >= self.word_threshold or _jaccard(a[1], b[1]) >= self.char_threshold


PLAIN_VI = "vi-plain"
"""The language of a Vietnamese phrasing typed without diacritics, beside "en", "vi" and "fr"."""


def held_out(text: str, share: float) -> bool:
    """Whether a text falls in the held-out `share` (by a hash of the text: the same on every machine). The
    phrasings held out so are never trained on; `training.thresholds` chooses the clarify threshold on them."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share
