"""The sentence encoder's training pairs: questions, their distinct answers, and the folds held out in turn."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from app.kiosk.verified import Phrasing, VerifiedPair, read_verified
from app.text import strip_accents
from training import qa
from training.sft_data import fold_of


@dataclass(frozen=True)
class Pairs:
    questions: list[str]
    answers: list[str]  # distinct, in first-seen order
    target: list[int]  # the index in `answers` of each question's answer


def read_pairs(path: Path) -> Pairs:
    pairs = qa.read_pairs(path)
    answers = list(dict.fromkeys(p.answer for p in pairs))
    index = {a: i for i, a in enumerate(answers)}
    return Pairs([p.question for p in pairs], answers, [index[p.answer] for p in pairs])


def with_phrasings(pairs: Pairs, phrasings: list[Phrasing], left_out: set[str]) -> Pairs:
    """`pairs` plus the visitors' phrasings of their answers (English styles, Vietnamese, French), and each
    Vietnamese phrasing typed without its diacritics too (as many visitors type it).

    Phrasings of answers that `pairs` lacks (the test split's) and those in `left_out` (held out to choose
    thresholds on) are not trained on.
    """
    index = {a: i for i, a in enumerate(pairs.answers)}
    questions, target = list(pairs.questions), list(pairs.target)
    for ph in phrasings:
        if ph.answer not in index or ph.question in left_out:
            continue
        typed = [ph.question]
        if ph.language == "vi" and strip_accents(ph.question) != ph.question:
            typed.append(strip_accents(ph.question))
        questions += typed
        target += [index[ph.answer]] * len(typed)
    return Pairs(questions, pairs.answers, target)


def fold_split(pairs: Pairs, train_csv: Path, folds: int, fold: int) -> tuple[list[int], list[int], list[VerifiedPair]]:
    """Rows kept for training, rows held out (fold `fold`), and serving's hints without the held-out questions.

    Every training answer stays in the index (as a test question's does); the held-out questions' words are
    neither hints nor word statistics.
    """
    fold_per_row = [fold_of(q, folds) for q in pairs.questions]
    kept = [i for i, k in enumerate(fold_per_row) if k != fold]
    held = [i for i, k in enumerate(fold_per_row) if k == fold]
    left_out = {pairs.questions[i] for i in held}
    hints = [
        h if h.question not in left_out else dataclasses.replace(h, question="") for h in read_verified([train_csv])
    ]
    return kept, held, hints
