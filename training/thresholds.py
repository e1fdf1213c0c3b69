"""Choose when the kiosk asks "did you mean" instead of answering, on phrasings held out of the matchers.

    python -m training.thresholds [--held-out 0.2] [--wrong-cost 3]

A fifth of the phrasings (`data/qa/phrasings/`, by a hash of their text) are held out; the curated matcher and
the answer ranker are built as served from everything else (verified pairs, the other phrasings, the served
sentence encoder). For each held-out phrasing: is the curated match right, and is the ranker's first answer
right (it states at least half the key facts of the phrasing's own answer, as the evaluation scores answers).
A wrong answer costs `--wrong-cost` clarifications (the museum's rule: a wrong statement about him is worse
than a question back); the clarify threshold with the lowest cost is written to
`reports/thresholds.md`. The fresh evaluation set is never read.

This scores the ranker's first answer alone. Since the reply tells the second answer too when it ranks close
(`app.kiosk.pipeline.SECOND_WITHIN`), the served threshold is chosen as served, on the two choice sets written
apart from the answers: `python -m training.evaluate --set validation --clarify-grid ...` (`reports/clarify.md`).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.artifacts import atomic_write_text
from app.kiosk.corpus import load_corpus
from app.kiosk.embeddings import get_embedder
from app.kiosk.retriever import Retriever
from app.kiosk.verified import AnswerRanker, CuratedAnswers, Phrasing, read_phrasings, read_verified, with_phrasings
from app.settings import Settings
from app.text import strip_accents
from training.metrics import TIE, cheapest, same_facts
from training.qa import PLAIN_VI, held_out

log = logging.getLogger(__name__)
LANGUAGES = ("en", "vi", "fr", PLAIN_VI)
GRID = tuple(round(x, 2) for x in np.arange(0.2, 0.61, 0.025))


@dataclass(frozen=True)
class Trial:
    language: str
    curated_score: float
    curated_right: bool
    ranked_score: float
    ranked_right: bool


def trials(settings: Settings, share: float, question_weights: tuple[float, ...] = ()) -> list[Trial]:
    verified = read_verified(settings.qa_files)
    phrasings = read_phrasings(settings.phrasings_dir)
    kept = [p for p in phrasings if not held_out(p.question, share)]
    tested = [p for p in phrasings if held_out(p.question, share)]
    pairs = with_phrasings(verified, kept)
    passages = load_corpus(settings.corpus)
    embedder = get_embedder(settings.embedder, settings.cache_dir) if settings.embedder else None
    curated = CuratedAnswers(pairs, settings.curated_threshold)
    # as served: the ranker of a retriever over the corpus, whose passages are expanded with the kept pairs only
    ranker = Retriever(passages, pairs, embedder=embedder).answers
    assert ranker is not None
    for w in question_weights:  # how much the closest phrasing should count, on the same held-out phrasings
        AnswerRanker.QUESTION_WEIGHT = w
        right = sum(bool((r := ranker.ranked(p.question, 1)) and r[0][0].answer == p.answer) for p in tested)
        log.info("question weight %s: first answer right %.3f", w, right / max(len(tested), 1))
    # Vietnamese phrasings also as visitors often type them, without diacritics: reported, not chosen on.
    typed_plain = [
        Phrasing(p.answer, PLAIN_VI, strip_accents(p.question))
        for p in tested
        if p.language == "vi" and strip_accents(p.question) != p.question
    ]
    out = []
    for p in tested + typed_plain:
        best = curated.best(p.question)
        ranked = ranker.ranked(p.question, 1)
        curated_right = bool(best and same_facts(p.answer, best.pair.answer))
        ranked_right = bool(ranked and same_facts(p.answer, ranked[0][0].answer))
        out.append(
            Trial(p.language, best.score if best else 0.0, curated_right, ranked[0][1] if ranked else 0.0, ranked_right)
        )
    return out


def first_right(rows: list[Trial]) -> float:
    return sum(t.ranked_right for t in rows) / max(len(rows), 1)


def cost(rows: list[Trial], curated_at: float, clarify_below: float, wrong_cost: float) -> tuple[float, int, int]:
    """(cost per question, wrong answers, clarifications) when routing as the service does."""
    wrong = clarified = 0
    for t in rows:
        if t.curated_score >= curated_at:
            wrong += not t.curated_right
        elif t.ranked_score < clarify_below:
            clarified += 1
        else:
            wrong += not t.ranked_right
    return (wrong_cost * wrong + clarified) / max(len(rows), 1), wrong, clarified


def choose(rows: list[Trial], curated_at: float, wrong_cost: float) -> float:
    """The cheapest threshold of GRID for the held-out phrasings."""
    return cheapest({x: cost(rows, curated_at, x, wrong_cost)[0] for x in GRID})


def report(trialled: list[Trial], curated_at: float, wrong_cost: float) -> tuple[float, str]:
    rows = [t for t in trialled if t.language != PLAIN_VI]
    lines = [
        f"# Clarify threshold (`python -m training.thresholds`, {len(rows)} held-out phrasings)",
        "",
        f"Curated threshold {curated_at}; a wrong answer costs {wrong_cost} clarifications; of the thresholds within "
        f"{TIE:.0%} of the lowest cost, the highest is chosen (fewest wrong answers).",
        "",
        "| clarify below | cost | wrong | clarified | wrong en | wrong vi | wrong fr |",
        "|---|---|---|---|---|---|---|",
    ]
    best = choose(rows, curated_at, wrong_cost)
    for x in GRID:
        c, wrong, clarified = cost(rows, curated_at, x, wrong_cost)
        per = [
            cost([t for t in rows if t.language == lang], curated_at, x, wrong_cost)[1] for lang in ("en", "vi", "fr")
        ]
        mark = " **chosen**" if x == best else ""
        lines.append(f"| {x}{mark} | {c:.3f} | {wrong} | {clarified} | " + " | ".join(map(str, per)) + " |")
    right = sum(t.curated_right for t in rows if t.curated_score >= curated_at)
    taken = sum(t.curated_score >= curated_at for t in rows)
    lines += [
        "",
        f"Curated answers taken: {taken}, right: {right}. Ranker first answer right: {first_right(rows):.3f}.",
        "",
        "| first answer right | all | en | vi | fr | vi typed without diacritics |",
        "|---|---|---|---|---|---|",
        f"| share | {first_right(rows):.3f} | "
        + " | ".join(f"{first_right([t for t in trialled if t.language == lang]):.3f}" for lang in LANGUAGES)
        + " |",
    ]
    return best, "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--held-out", type=float, default=0.2)
    parser.add_argument("--wrong-cost", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("reports/thresholds.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings(_env_file=None)
    rows = trials(settings, args.held_out)
    best, text = report(rows, settings.curated_threshold, args.wrong_cost)
    atomic_write_text(args.out, text)
    print(text)
    print(f"chosen KIOSK_CLARIFY_THRESHOLD={best}")


if __name__ == "__main__":
    main()
