"""The fresh evaluation set (`data/eval/`): loading, checking and scoring questions written apart from our data.

The set is written by a process that saw only the knowledge base (`data/eval/README.md`); no training step,
threshold or choice reads it. Only the evaluation (`python -m training.evaluate --set fresh`) opens it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.text import fold

EVAL_DIR = Path("data/eval")
Language = Literal["en", "vi", "fr"]
STYLES = ("plain", "typo", "fragment", "long", "yesno", "vi_diacritics", "vi_plain", "fr")
LOADED_KINDS = ("value_judgement", "insinuation", "false_premise", "injection")
GATE_KINDS = ("general", "hard_negative", "hard_positive", "fragment")
# Replies that decline to answer: the gate's off-topic reply and the "not sure, did you mean" reply.
DECLINED = ("off_topic", "clarify")
_VERDICTS = {
    "yes": "yes",
    "yeah": "yes",
    "co": "yes",
    "vang": "yes",
    "dung": "yes",
    "oui": "yes",
    "no": "no",
    "khong": "no",
    "non": "no",
    "sai": "no",
}
_FIRST_WORD = re.compile(r"^\W*(\w+)")

Fact = tuple[str, ...]
"""One key fact: its acceptable surface forms (any one counts)."""


class FreshSetError(ValueError):
    """A line of the fresh set that does not follow `data/eval/FORMAT.md`."""


@dataclass(frozen=True)
class Question:
    id: str
    language: Language
    style: str
    question: str
    key_facts: tuple[Fact, ...]
    answerable: bool = True
    verdict: Literal["yes", "no"] | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    language: Language
    kind: Literal["follow_up", "topic_change"]
    turns: tuple[Question, ...]


@dataclass(frozen=True)
class Loaded:
    id: str
    language: Language
    kind: str
    question: str
    must_not: tuple[re.Pattern[str], ...]
    key_facts: tuple[Fact, ...] = ()


@dataclass(frozen=True)
class GateItem:
    id: str
    language: Language
    kind: str
    question: str
    related: bool


@dataclass
class FreshSet:
    questions: list[Question] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    loaded: list[Loaded] = field(default_factory=list)
    gate: list[GateItem] = field(default_factory=list)


def _rows(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                yield f"{path.name}:{n}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise FreshSetError(f"{path.name}:{n}: not JSON ({exc})") from exc


def _facts(where: str, raw: Any) -> tuple[Fact, ...]:
    if not isinstance(raw, list) or not all(
        isinstance(f, list) and f and all(isinstance(s, str) and s.strip() for s in f) for f in raw
    ):
        raise FreshSetError(f"{where}: key_facts must be a list of non-empty lists of strings")
    return tuple(tuple(s.strip() for s in fact) for fact in raw)


def _language(where: str, row: dict[str, Any]) -> Language:
    if row.get("language") not in ("en", "vi", "fr"):
        raise FreshSetError(f"{where}: language must be en, vi or fr")
    return row["language"]  # type: ignore[no-any-return]


def _question(where: str, row: dict[str, Any], style: str | None = None) -> Question:
    style = style or row.get("style", "")
    if style not in STYLES and style != "turn":
        raise FreshSetError(f"{where}: unknown style {style!r}")
    text = row.get("question")
    if not isinstance(text, str) or not text.strip():
        raise FreshSetError(f"{where}: question must be non-empty text")
    facts = _facts(where, row.get("key_facts", []))
    answerable = bool(row.get("answerable", True))
    if answerable == (not facts):
        raise FreshSetError(f"{where}: an answerable question needs key facts, an unanswerable one has none")
    verdict = row.get("verdict")
    if verdict not in (None, "yes", "no"):
        raise FreshSetError(f"{where}: verdict must be yes, no or null")
    return Question(row.get("id", where), row.get("language", "en"), style, text.strip(), facts, answerable, verdict)


def _loaded(where: str, row: dict[str, Any]) -> Loaded:
    if row.get("kind") not in LOADED_KINDS:
        raise FreshSetError(f"{where}: unknown kind {row.get('kind')!r}")
    try:
        patterns = tuple(re.compile(p, re.I) for p in row.get("must_not", []))
    except re.error as exc:
        raise FreshSetError(f"{where}: must_not pattern does not compile ({exc})") from exc
    if not patterns:
        raise FreshSetError(f"{where}: must_not needs at least one pattern")
    facts = _facts(where, row.get("key_facts", []))
    return Loaded(row["id"], _language(where, row), row["kind"], row["question"].strip(), patterns, facts)


def load(directory: Path = EVAL_DIR) -> FreshSet:
    """Every file of the set, checked; raises FreshSetError naming the file and line of the first problem."""
    fresh = FreshSet()
    for path in sorted(directory.glob("questions-*.jsonl")):
        for where, row in _rows(path):
            _language(where, row)
            fresh.questions.append(_question(where, row))
    if (path := directory / "conversations.jsonl").is_file():
        for where, row in _rows(path):
            language = _language(where, row)
            turns = tuple(
                _question(f"{where} turn {i + 1}", {**t, "language": language}, "turn")
                for i, t in enumerate(row.get("turns", []))
            )
            if not 2 <= len(turns) <= 4 or row.get("kind") not in ("follow_up", "topic_change"):
                raise FreshSetError(f"{where}: a conversation has 2-4 turns and a kind follow_up or topic_change")
            fresh.conversations.append(Conversation(row["id"], language, row["kind"], turns))
    if (path := directory / "loaded.jsonl").is_file():
        fresh.loaded = [_loaded(where, row) for where, row in _rows(path)]
    if (path := directory / "gate.jsonl").is_file():
        for where, row in _rows(path):
            if row.get("kind") not in GATE_KINDS or row.get("related") != (
                row["kind"] in ("hard_positive", "fragment")
            ):
                raise FreshSetError(f"{where}: kind must be one of {GATE_KINDS} and agree with related")
            fresh.gate.append(GateItem(row["id"], _language(where, row), row["kind"], row["question"], row["related"]))
    ids = [q.id for q in fresh.questions] + [c.id for c in fresh.conversations] + [x.id for x in fresh.loaded]
    ids += [g.id for g in fresh.gate]
    if len(ids) != len(set(ids)):
        raise FreshSetError(f"duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})[:5]}")
    return fresh


def fact_found(fact: Sequence[str], answer: str) -> bool:
    """Whether any form of the fact occurs in the answer as whole words, case and accents folded."""
    haystack = fold(answer)
    return any(re.search(rf"(?<!\w){re.escape(fold(form))}(?!\w)", haystack) for form in fact)


def key_fact_score(facts: Sequence[Fact], answer: str) -> float:
    """Share of the key facts the answer states (1.0 when there are none to state)."""
    return sum(fact_found(f, answer) for f in facts) / len(facts) if facts else 1.0


def verdict(answer: str) -> Literal["yes", "no"] | None:
    """The yes/no verdict an answer opens with, in English, Vietnamese or French."""
    match = _FIRST_WORD.match(fold(answer))
    return _VERDICTS.get(match.group(1)) if match else None  # type: ignore[return-value]


def confirms(item: Loaded, answer: str) -> bool:
    """Whether a reply to a loaded question says what it must not (a confirmation or a followed injection)."""
    folded = fold(answer)
    return any(p.search(folded) for p in item.must_not)
