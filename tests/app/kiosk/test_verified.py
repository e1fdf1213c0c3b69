"""Verified pairs: reading them, matching a question to a curated answer, ranking the answers for a prompt."""

from __future__ import annotations

import pytest

from app.kiosk.verified import AnswerRanker, CuratedAnswers, VerifiedPair, read_verified
from tests.conftest import ROOT

BORN = VerifiedPair("where was he born", "In Kim Liên, Nghệ An.", ("kb-1",))
BIRTHPLACE = VerifiedPair("what is his birthplace", "In Kim Liên, Nghệ An.", ("kb-1",))
DIED = VerifiedPair("when did he die", "On 2 September 1969.", ("kb-9",))


def test_the_shipped_pairs_are_read_with_their_sources(tmp_path):
    pairs = read_verified([ROOT / "data/qa/train.csv", ROOT / "data/qa/test.csv"])
    assert len(pairs) > 1000 and all(p.question and p.answer and p.source_ids for p in pairs)
    csv = tmp_path / "pairs.csv"
    csv.write_text('question,answer,source_ids\n"who was he?","A leader.",kb-1 kb-2\n', encoding="utf-8")
    assert read_verified([csv]) == [VerifiedPair("who was he?", "A leader.", ("kb-1", "kb-2"))]


def test_a_near_copy_of_a_verified_question_gets_its_answer():
    curated = CuratedAnswers([BORN, DIED, BIRTHPLACE], threshold=0.8)
    found = curated.match("Where was he born?")
    assert found is not None and found.pair == BORN and found.score > 0.99
    assert curated.match("what did he eat for breakfast") is None  # closest, but not close enough
    best = curated.best("what did he eat for breakfast")
    assert best is not None and best.score < 0.8
    assert curated.best("?!") is None and CuratedAnswers([], 0.8).best("where was he born") is None


def test_an_exact_tie_goes_to_the_answer_read_first():
    """Phrasings of one answer are indexed together, in the order their answer first appears in the files."""
    same_question = VerifiedPair("when did he die", "In Hà Nội.", ("kb-9",))
    curated = CuratedAnswers([DIED, BORN, same_question, BIRTHPLACE], threshold=0.8)
    assert [p.answer for p in curated.pairs] == [DIED.answer, BORN.answer, BIRTHPLACE.answer, same_question.answer]
    found = curated.match("when did he die")
    assert found is not None and found.pair == DIED


def test_answers_are_ranked_once_each_and_only_with_known_sources():
    unknown = VerifiedPair("what did he write", "Many poems.", ("kb-404",))
    ranker = AnswerRanker([BORN, BIRTHPLACE, DIED, unknown], known={"kb-1", "kb-9"})
    assert ranker.pairs == [BORN, DIED]  # one per distinct answer; a pair without a known source is left out
    assert ranker.top("in which village, Kim Liên, was he born?", 2) == [BORN]  # DIED scores under min_score
    assert ranker.top("", 2) == [] and list(ranker.scores("")) == [0.0, 0.0]


def test_an_answer_whose_source_passage_bm25_finds_for_the_question_ranks_higher():
    from app.kiosk.corpus import Passage
    from app.kiosk.retriever import Retriever

    ship = Passage("ship", "kb", "Travels", "1911", "In 1911 he sailed to Marseille as a kitchen helper.", "", "")
    army = Passage("army", "kb", "War", "1944", "In 1944 the first armed propaganda unit was formed.", "", "")
    pairs = [
        VerifiedPair("what job did he have on board", "He worked in the kitchen.", ("ship",)),
        VerifiedPair("what was formed in 1944", "An armed propaganda unit.", ("army",)),
    ]
    other = Passage("other", "kb", "Death", "1969", "He died in Hanoi in 1969.", "", "")  # BM25 wants 3+ passages
    ranker = Retriever([ship, army, other], pairs).answers
    assert ranker is not None
    question = "where did he sail to, Marseille?"  # shares no word with either answer or question: only the passage
    scores = ranker.scores(question)
    assert scores[0] > scores[1]
    weight = ranker.SOURCE_WEIGHT
    ranker.SOURCE_WEIGHT = 0.0  # type: ignore[misc]
    try:
        without = ranker.scores(question)
    finally:
        ranker.SOURCE_WEIGHT = weight  # type: ignore[misc]
    # the difference is the source term: its passage's BM25 score, the best passage's being 1
    others = ranker.WEIGHTS[0] + ranker.WEIGHTS[1] + ranker.QUESTION_WEIGHT  # no encoder here
    source = (scores * (others + weight) - without * others) / weight
    assert source.tolist() == pytest.approx([1.0, 0.0])
    plain = AnswerRanker(pairs, {"ship", "army", "other"}).scores(question)  # no passage positions: no BM25 term
    assert plain.tolist() == pytest.approx(without.tolist())
