"""The question–answer files: reading, writing and the fact check that ties an answer to its passages."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from app.artifacts import atomic_write_text
from app.text import fold, fold_words, sent_tokenize

COLUMNS = ["question", "answer", "topic", "source_ids"]
QA_DIR = Path("data/qa")
SOURCE_DIR = QA_DIR / "source"
TRAIN_CSV = QA_DIR / "train.csv"
TEST_CSV = QA_DIR / "test.csv"
MUSEUM_CSV = QA_DIR / "museum.csv"
TOPICS = (
    "early-life", "names", "travels", "youth-league-party", "viet-minh", "august-revolution",
    "first-indochina-war", "presidency", "death", "memorials", "personal-life", "legacy",
)  # fmt: skip
MAX_QUESTION_CHARS = 500
MAX_ANSWER_WORDS = 50
MAX_ANSWER_SENTENCES = 2

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


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


def _norm_number(n: str) -> str:
    return n.replace(",", "")


def facts(answer: str) -> tuple[list[str], list[str]]:
    """The numbers, and the capitalised words that do not open a sentence, of an answer."""
    numbers = [_norm_number(n) for n in _NUMBER.findall(answer)]
    names: list[str] = []
    for sentence in sent_tokenize(answer):
        for i, word in enumerate(_WORD.findall(sentence)):
            if i > 0 and word[0].isupper() and word != "I":
                names.append(re.sub(r"['’]s$", "", word).strip("-'’"))
    return numbers, names


def missing_facts(answer: str, passage_text: str) -> list[str]:
    """Facts of `answer` that `passage_text` does not contain (case- and accent-folded)."""
    haystack = fold(passage_text)
    digits = _norm_number(haystack)
    numbers, names = facts(answer)
    missing = [n for n in numbers if not re.search(rf"(?<![\d]){re.escape(n)}(?![\d])", digits)]
    missing += [w for w in names if not re.search(rf"(?<!\w){re.escape(fold(w))}(?!\w)", haystack)]
    return missing


def question_key(question: str) -> str:
    """Two questions with the same key are duplicates."""
    return fold_words(question)


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
