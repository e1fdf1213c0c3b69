"""Choosing the clarify threshold on held-out phrasings: the cost, the tie rule, what is reported apart."""

from __future__ import annotations

from training.thresholds import GRID, PLAIN_VI, Trial, choose, cost, report


def _trial(score: float, right: bool, language: str = "en") -> Trial:
    return Trial(language, curated_score=0.0, curated_right=False, ranked_score=score, ranked_right=right)


def test_a_wrong_answer_costs_more_than_a_clarification():
    rows = [_trial(0.3, False), _trial(0.5, True)]
    assert cost(rows, 0.8, 0.2, 3.0) == (1.5, 1, 0)  # both answered, one wrongly: 3 / 2
    assert cost(rows, 0.8, 0.4, 3.0) == (0.5, 0, 1)  # the wrong one asked back instead: 1 / 2


def test_of_thresholds_that_cost_about_the_same_the_one_answering_wrongly_least_is_chosen():
    # 100 right answers scoring 0.45, 3 wrong at 0.3: clarifying below 0.32..0.45 costs nothing more than the
    # wrong answers would; the cheapest grid point is any up to 0.45, and the highest of them wins
    rows = [_trial(0.45, True)] * 100 + [_trial(0.3, False)] * 3
    chosen = choose(rows, 0.8, 3.0)
    assert chosen == max(x for x in GRID if x <= 0.45)
    assert cost(rows, 0.8, chosen, 3.0)[1] == 0
    # a threshold that would clarify many right answers is not "about the same"
    assert choose(rows + [_trial(0.5, True)] * 10, 0.8, 3.0) <= 0.5


def test_vietnamese_typed_without_diacritics_is_reported_but_not_chosen_on():
    rows = [_trial(0.45, True), _trial(0.3, False, "vi")]
    plain = [_trial(0.55, False, PLAIN_VI)] * 50  # would push the choice above 0.55 if it counted
    best, text = report(rows + plain, 0.8, 3.0)
    assert best == choose(rows, 0.8, 3.0)
    assert "| share | 0.500 | 1.000 | 0.000 | 0.000 | 0.000 |" in text
