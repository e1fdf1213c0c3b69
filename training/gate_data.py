"""The gate's labelled questions, split into train / validation / test without leaks.

Related: the QA dataset's questions (its test split is the gate's test split) and the hand-written hard
positives. Not related: general questions (WebQuestions, chitchat) and the hand-written hard negatives.
Questions that are not in the QA split are assigned by a hash of their folded text, so the split is
stable when files grow.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from app.text import fold_words
from training import qa
from training.offtopic import GENERAL_CSV, HARD_NEGATIVES_CSV, HARD_POSITIVES_CSV, read_questions

Split = Literal["train", "val", "test"]
Group = Literal["qa", "hard_positive", "general", "hard_negative"]


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1 related, 0 not related
    group: Group
    category: str
    split: Split


def hash_split(text: str, val_share: float, test_share: float) -> Split:
    bucket = int(hashlib.sha256(fold_words(text).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < test_share:
        return "test"
    return "val" if bucket < test_share + val_share else "train"


def load_examples(val_share: float = 0.15, test_share: float = 0.2) -> list[Example]:
    examples: list[Example] = []
    for pair in qa.read_pairs(qa.TRAIN_CSV):
        # The QA test split is already held out; validation comes out of the QA training questions, drawn by
        # answer: paraphrases of one answer stay on one side (else validation sees near-copies of training
        # questions), and the question's own hash would not do (the QA test split took the low question hashes).
        split: Split = "val" if hash_split(pair.answer, val_share, 0.0) == "val" else "train"
        examples.append(Example(pair.question, 1, "qa", pair.topic, split))
    examples += [Example(p.question, 1, "qa", p.topic, "test") for p in qa.read_pairs(qa.TEST_CSV)]
    for path, label, group in (
        (HARD_POSITIVES_CSV, 1, "hard_positive"),
        (GENERAL_CSV, 0, "general"),
        (HARD_NEGATIVES_CSV, 0, "hard_negative"),
    ):
        for text, category in read_questions(path):
            examples.append(Example(text, label, group, category, hash_split(text, val_share, test_share)))  # type: ignore[arg-type]
    return dedupe(examples)


def dedupe(examples: list[Example]) -> list[Example]:
    """One example per folded question; a question seen in test is dropped from train and val."""
    rank = {"test": 0, "val": 1, "train": 2}
    kept: dict[str, Example] = {}
    for ex in sorted(examples, key=lambda e: rank[e.split]):
        kept.setdefault(fold_words(ex.text), ex)
    return list(kept.values())


def data_files() -> list:
    return [qa.TRAIN_CSV, qa.TEST_CSV, HARD_POSITIVES_CSV, GENERAL_CSV, HARD_NEGATIVES_CSV]
