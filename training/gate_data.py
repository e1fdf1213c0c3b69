"""The gate's labelled questions, split into train / validation / test without leaks.

Related: the QA dataset's questions (its test split is the gate's test split) and the hand-written hard
positives. Not related: general questions (WebQuestions, chitchat) and the hand-written hard negatives.
Questions that are not in the QA split go to test by a hash of their folded text, so the test split is
stable when files grow; validation takes the same share of every (group, language, kind) cell of the rest
(`carve_validation`), so that a kind of a few dozen questions is measured too. Off-topic questions that the
QA dataset's own scope makes related go to an "ambiguous" bucket (`scope_conflict`), used neither to train
nor to evaluate.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from app.kiosk.corpus import load_corpus
from app.kiosk.language import LANGUAGES, Language, has_vietnamese_letters
from app.text import fold_words, terms
from training import multilingual, qa
from training.documents import CORPUS

Split = Literal["train", "val", "test", "ambiguous"]
Group = Literal["qa", "hard_positive", "general", "hard_negative"]
OFFTOPIC_DIR = Path("data/offtopic")
GENERAL_CSV = OFFTOPIC_DIR / "general.csv"
"""General questions (WebQuestions, chitchat), written by `python -m training.offtopic build`."""
HARD_NEGATIVES_CSV = OFFTOPIC_DIR / "hard_negatives.csv"
HARD_POSITIVES_CSV = OFFTOPIC_DIR / "hard_positives.csv"
GENERAL_MULTILINGUAL_CSV = OFFTOPIC_DIR / "general_multilingual.csv"
"""Hand-written everyday Vietnamese and French questions (WebQuestions and chitchat are English only)."""
# What each hand-written category (without its -vi / -fr suffix) is about: the report's rows per kind. Every
# category in the files must be named here (`python -m training.dataset validate` checks).
KINDS: dict[str, str] = {
    "alias": "named",
    "vietnamese": "named",
    "description": "described",
    "naming": "naming",
    "pronoun": "pronoun",
    "fragment": "fragment",
    **dict.fromkeys(
        ("hcmc-travel", "hcmc-food", "hcmc-districts", "hcmc-weather", "hcmc-airport", "hcmc-business", "hcmc-life"),
        "city",
    ),
    "trail-tourism": "trail",
    **dict.fromkeys(("other-leaders", "other-figures", "other-biography"), "other-people"),
    "homonyms": "homonyms",
    "communism-general": "communism",
    **dict.fromkeys(("vietnam-general", "vietnam-history", "vietnam-wars"), "vietnam"),
    "other-museums-mausoleums": "museums",
    "general": "general",
}
# "who was X", "who is X", "X là ai" (folded): a question that asks only who someone is.
_IDENTITY = re.compile(r"^(?:who (?:was|is) (?P<en>.+)|(?P<vi>.+) la ai)$")


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1 related, 0 not related
    group: Group
    category: str
    split: Split
    reason: str = ""
    """Why an off-topic question was moved to the ambiguous bucket (empty otherwise)."""
    answer: str = ""
    """A QA question's verified answer: its paraphrases stay together in every split and fold."""

    @property
    def language(self) -> Language:
        """The language its file declares (a -vi / -fr category, a phrasing's column); else Vietnamese when it
        carries Vietnamese letters, English otherwise."""
        return category_language(self.category) or ("vi" if has_vietnamese_letters(self.text) else "en")

    @property
    def kind(self) -> str:
        """ "qa" for the QA set's questions and phrasings, "general" for general ones, else its category's kind."""
        if self.group == "qa":
            return "qa"
        if self.group == "general":
            return "general"
        return KINDS.get(base_category(self.category), "other")


def category_language(category: str) -> Language | None:
    """The language a category declares: "hcmc-travel-vi" and "phrasing-vi" -> vi, "vietnamese" -> vi."""
    if category == "vietnamese":
        return "vi"
    base, _, suffix = category.rpartition("-")
    return next((lang for lang in LANGUAGES if base and suffix == lang), None)


def base_category(category: str) -> str:
    """The category without its language suffix: "hcmc-travel-vi" -> "hcmc-travel"."""
    return category.rsplit("-", 1)[0] if category_language(category) and "-" in category else category


def read_questions(path: Path) -> list[tuple[str, str]]:
    """(question, category-or-source) rows of an off-topic CSV."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        return [(row[0].strip(), row[1].strip()) for row in reader if row and row[0].strip()]


def _bucket(text: str, salt: str = "") -> float:
    return int(hashlib.sha256(f"{salt}{fold_words(text)}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def hash_split(text: str, val_share: float, test_share: float) -> Split:
    bucket = _bucket(text)
    if bucket < test_share:
        return "test"
    return "val" if bucket < test_share + val_share else "train"


def carve_validation(examples: list[Example], val_share: float, seed: int = 0) -> list[Example]:
    """`val_share` of each (group, language, kind) cell moves from train to validation: the training examples
    that rank first by a seeded hash of their folded text (so the same ones whatever the order of the files).
    The share is of the whole cell, test included, as `hash_split` draws it."""
    cells: dict[tuple[str, str, str], list[Example]] = {}
    for e in examples:
        cells.setdefault((e.group, e.language, e.kind), []).append(e)
    chosen: set[int] = set()
    for cell in cells.values():
        train = sorted((e for e in cell if e.split == "train"), key=lambda e: _bucket(e.text, f"{seed}:"))
        chosen.update(id(e) for e in train[: round(val_share * len(cell))])
    return [replace(e, split="val") if id(e) in chosen else e for e in examples]


def scope_conflict(question: str, related: set[str], knowledge: str) -> str:
    """Why an off-topic question contradicts the QA dataset's scope ("" if it does not).

    1. The same question (folded) is a related question of the QA set or the hard positives.
    2. It only asks who someone is, and the museum's knowledge base names that person: the QA set answers
       such questions ("who was le duan", "who was bao dai", "who was tran phu") with the person's part in
       his story, so "who was X" cannot be off-topic for those people. Other questions about them (their
       deaths, families, later careers) stay off-topic.
    """
    key = fold_words(question)
    if key in related:
        return "asked as a related question"
    match = _IDENTITY.match(key)
    who = match and (match.group("en") or match.group("vi"))
    if who and terms(who) and f" {who} " in knowledge:
        return "asks who someone the knowledge base names is"
    return ""


def load_examples(
    val_share: float = 0.15, test_share: float = 0.2, corpus: Path | None = CORPUS, seed: int = 0
) -> list[Example]:
    examples: list[Example] = []
    for pair in qa.read_pairs(qa.TRAIN_CSV):
        # The QA test split is already held out; validation comes out of the QA training questions, drawn by
        # answer: paraphrases of one answer stay on one side (else validation sees near-copies of training
        # questions), and the question's own hash would not do (the QA test split took the low question hashes).
        split: Split = "val" if hash_split(pair.answer, val_share, 0.0) == "val" else "train"
        examples.append(Example(pair.question, 1, "qa", pair.topic, split, answer=pair.answer))
    test_answers = {p.answer for p in qa.read_pairs(qa.TEST_CSV)}
    examples += [Example(p.question, 1, "qa", p.topic, "test", answer=p.answer) for p in qa.read_pairs(qa.TEST_CSV)]
    # Visitors' other phrasings (English styles, Vietnamese, French) go with their answer's side of the split.
    for row in multilingual.phrasings():
        answer, language = row.values["answer"], row.values["language"]
        side: Split = (
            "test" if answer in test_answers else "val" if hash_split(answer, val_share, 0.0) == "val" else "train"
        )
        examples.append(Example(row.values["question"], 1, "qa", f"phrasing-{language}", side, answer=answer))
    written = [
        Example(text, 1, "hard_positive", category, hash_split(text, 0.0, test_share))
        for text, category in read_questions(HARD_POSITIVES_CSV)
    ]
    related = {fold_words(e.text) for e in examples + written}
    knowledge = f" {' '.join(fold_words(p.text) for p in load_corpus(corpus))} " if corpus else ""
    general = (GENERAL_CSV, "general"), (GENERAL_MULTILINGUAL_CSV, "general"), (HARD_NEGATIVES_CSV, "hard_negative")
    for path, group in general:
        for text, category in read_questions(path):
            reason = scope_conflict(text, related, knowledge)
            split = "ambiguous" if reason else hash_split(text, 0.0, test_share)
            written.append(Example(text, 0, group, category, split, reason))  # type: ignore[arg-type]
    return dedupe(examples + carve_validation(written, val_share, seed))


def dedupe(examples: list[Example]) -> list[Example]:
    """One example per folded question; a question seen in test is dropped from train and val. Ambiguous
    ones are all kept (they are neither trained on nor scored), so the report lists every one."""
    rank = {"test": 0, "val": 1, "train": 2}
    kept: dict[str, Example] = {}
    for ex in sorted((e for e in examples if e.split != "ambiguous"), key=lambda e: rank[e.split]):
        kept.setdefault(fold_words(ex.text), ex)
    return list(kept.values()) + [e for e in examples if e.split == "ambiguous"]


def data_files() -> list:
    return [
        qa.TRAIN_CSV,
        qa.TEST_CSV,
        HARD_POSITIVES_CSV,
        GENERAL_CSV,
        GENERAL_MULTILINGUAL_CSV,
        HARD_NEGATIVES_CSV,
        *multilingual.phrasing_files(),
    ]
