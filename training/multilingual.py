"""More ways to ask each verified answer, and its Vietnamese version: reading and checking their files.

`data/qa/phrasings/<topic>.csv` (`answer,language,question`): visitors' phrasings of a verified answer in English,
Vietnamese and French (texting, fragments, long questions), keyed by the answer's exact English text.
`data/qa/vi/<topic>.csv` (`answer,answer_vi`): the Vietnamese version of every verified answer.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from app.kiosk.guard import opens_with_verdict
from app.text import fold_words, strip_accents
from training import qa

PHRASINGS_DIR = qa.QA_DIR / "phrasings"
VI_DIR = qa.QA_DIR / "vi"
LANGUAGES = ("en", "vi", "fr")
MIN_PHRASINGS = 10
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Row:
    file: str
    row: int
    values: dict[str, str]


def read_rows(path: Path, columns: list[str]) -> list[Row]:
    """The rows of a UTF-8 CSV file with exactly `columns`; raises QAFileError naming the file and line."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise qa.QAFileError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    if reader.fieldnames != columns:
        raise qa.QAFileError(f"{path}:1: header must be {','.join(columns)}, found {reader.fieldnames}")
    return [Row(str(path), reader.line_num, {k: (v or "").strip() for k, v in r.items()}) for r in reader]


def phrasing_files(topic: str | None = None) -> list[Path]:
    return sorted(PHRASINGS_DIR.glob(f"{topic or '*'}.csv"))


def vi_files(topic: str | None = None) -> list[Path]:
    return sorted(VI_DIR.glob(f"{topic or '*'}.csv"))


def phrasings(topic: str | None = None) -> list[Row]:
    return [r for f in phrasing_files(topic) for r in read_rows(f, ["answer", "language", "question"])]


def vietnamese(topic: str | None = None) -> dict[str, str]:
    """English verified answer -> its Vietnamese version."""
    return {
        r.values["answer"]: r.values["answer_vi"]
        for f in vi_files(topic)
        for r in read_rows(f, ["answer", "answer_vi"])
    }


def _marked_words(text: str) -> list[str]:
    """Words written with Vietnamese diacritics (names, mostly): a translation must keep them."""
    return [w for w in re.findall(r"[^\W\d_]+", text) if strip_accents(w) != w]


def vi_defects(english: str, vi: str) -> list[str]:
    """Where a Vietnamese answer disagrees with its English one: numbers, Vietnamese names, length."""
    problems = []
    missing = sorted(set(_DIGITS.findall(english.replace(",", ""))) - set(_DIGITS.findall(vi.replace(".", ""))))
    if missing:
        problems.append(f"numbers of the English answer missing from the Vietnamese: {', '.join(missing)}")
    names = [w for w in _marked_words(english) if w.lower() not in vi.lower()]
    if names:
        problems.append(f"Vietnamese names of the English answer missing: {', '.join(names)}")
    if opens_with_verdict(vi) and not opens_with_verdict(english):
        problems.append("the Vietnamese answer opens with a verdict (Có/Không) that the English one does not give")
    if not vi or len(vi.split()) > 2 * len(english.split()) + 20:
        problems.append("the Vietnamese answer is empty or far longer than the English one")
    return problems


def check(topic: str | None, answers: set[str], known_questions: set[str]) -> list[tuple[str, int, str]]:
    """(file, line, problem) for every phrasing or Vietnamese answer that breaks the rules of the module docstring.

    `answers`: the verified answers of the topic(s); `known_questions`: folded questions already in the QA files.
    """
    defects: list[tuple[str, int, str]] = []
    count: Counter[str] = Counter()
    seen = set(known_questions)
    for r in phrasings(topic):
        answer, language, question = r.values["answer"], r.values["language"], r.values["question"]
        if answer not in answers:
            defects.append((r.file, r.row, "answer is not one of the topic's verified answers (copy it exactly)"))
        if language not in LANGUAGES:
            defects.append((r.file, r.row, f"language must be one of {', '.join(LANGUAGES)}"))
        if not question or len(question) > qa.MAX_QUESTION_CHARS:
            defects.append((r.file, r.row, f"question must be 1-{qa.MAX_QUESTION_CHARS} characters"))
        key = fold_words(question)
        if key in seen:
            defects.append((r.file, r.row, f"duplicate question {question!r}"))
        seen.add(key)
        count[answer] += 1
    translated = vietnamese(topic)
    for answer in sorted(answers):
        if count[answer] < MIN_PHRASINGS:
            defects.append(
                (str(PHRASINGS_DIR), 0, f"{count[answer]} phrasings (< {MIN_PHRASINGS}) for {answer[:60]!r}")
            )
        if answer not in translated:
            defects.append((str(VI_DIR), 0, f"no Vietnamese version of {answer[:60]!r}"))
        else:
            defects += [(str(VI_DIR), 0, f"{p} ({answer[:50]!r})") for p in vi_defects(answer, translated[answer])]
    defects += [
        (str(VI_DIR), 0, f"Vietnamese version of an unknown answer {a[:60]!r}") for a in translated if a not in answers
    ]
    return defects
