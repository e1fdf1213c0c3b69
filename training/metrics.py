"""Answer quality measures, on generated text: BLEU (sentence and corpus), ROUGE-L, key-fact accuracy."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.kiosk.guard import facts
from app.prompt import ends_cleanly
from app.text import fold


def key_facts(reference: str) -> list[str]:
    """The numbers and names of a reference answer, folded."""
    numbers, names = facts(reference)
    return list(dict.fromkeys([fold(x) for x in numbers + names]))


def key_fact_accuracy(reference: str, generated: str) -> float | None:
    """Share of the reference's numbers and names found in the generated answer (None: it has none)."""
    wanted = key_facts(reference)
    if not wanted:
        return None
    haystack = fold(generated)
    found = sum(bool(re.search(rf"(?<!\w){re.escape(f)}(?!\w)", haystack)) for f in wanted)
    return found / len(wanted)


@dataclass(frozen=True)
class Scores:
    mean_sentence_bleu: float
    corpus_bleu: float
    rouge_l: float
    key_fact_accuracy: float
    clean_endings: float
    n: int
    fallbacks: int = 0
    """Answers that did not end cleanly and were replaced by a retrieved sentence, as the service does."""


def score(references: list[str], generated: list[str], fallbacks: int = 0) -> Scores:
    import sacrebleu
    from rouge_score import rouge_scorer

    sentence = [sacrebleu.sentence_bleu(g, [r]).score / 100 for r, g in zip(references, generated, strict=True)]
    corpus = sacrebleu.corpus_bleu(generated, [references]).score / 100
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [scorer.score(r, g)["rougeL"].fmeasure for r, g in zip(references, generated, strict=True)]
    accuracies = [a for r, g in zip(references, generated, strict=True) if (a := key_fact_accuracy(r, g)) is not None]
    n = len(references)
    return Scores(
        mean_sentence_bleu=round(sum(sentence) / n, 4),
        corpus_bleu=round(corpus, 4),
        rouge_l=round(sum(rouge) / n, 4),
        key_fact_accuracy=round(sum(accuracies) / max(len(accuracies), 1), 4),
        clean_endings=round(sum(ends_cleanly(g) for g in generated) / n, 4),
        n=n,
        fallbacks=fallbacks,
    )


def same_facts(reference: str, given: str) -> bool:
    """Right when the answer given states at least half the numbers and names of the phrasing's own answer: many
    verified answers repeat one fact in two topics, and either serves the visitor."""
    score = key_fact_accuracy(reference, given)
    return given == reference if score is None else score >= 0.5


TIE = 0.01
"""Costs of thresholds within 1% of the lowest count as equal (a few questions' difference on ~1,000)."""


def cheapest(costs: dict[float, float]) -> float:
    """The highest threshold whose cost is within TIE of the lowest: where the costs barely differ, the one
    that answers wrongly least (the museum's preference, whatever the exact price of a wrong answer)."""
    lowest = min(costs.values())
    return max(x for x, c in costs.items() if c <= lowest * (1 + TIE))
