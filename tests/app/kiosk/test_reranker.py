"""The reranker: its inputs, its file, and what it changes in the ranking of verified answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from app.artifacts import ArtifactError
from app.kiosk.corpus import load_corpus
from app.kiosk.reranker import FEATURES, RERANKER_FILE, Reranker, rows
from app.kiosk.retriever import Retriever
from app.kiosk.verified import VerifiedPair, read_verified
from tests.conftest import ROOT


@dataclass
class StubCross:
    """A cross-encoder that prefers answers holding a given word."""

    word: str
    identity: str = "stub"

    def scores(self, question: str, answers: list[str]) -> np.ndarray:
        return np.array([5.0 if self.word in a else -5.0 for a in answers])


def test_rows_put_each_feature_in_its_column() -> None:
    features = np.array([[0.9, 0.8, 0.7, 0.6, 1.0], [0.5, 0.4, 0.3, 0.2, 0.1]])
    mean, cross = np.array([0.8, 0.4]), np.array([1.0, 3.0])
    english = rows(features, mean, cross, "en")
    assert english.shape == (2, len(FEATURES))
    named = dict(zip(FEATURES, english[1], strict=True))
    assert named["mean"] == 0.4 and named["gap"] == pytest.approx(-0.4) and named["first"] == 0.0
    assert named["cross"] == 3.0 and named["cross_gap"] == 0.0 and english[0, FEATURES.index("first")] == 1.0
    assert not english[:, FEATURES.index("vi*bias") :].any()  # English: no language or follow-up column is set
    vietnamese = dict(zip(FEATURES, rows(features, mean, cross, "vi", follow_up=True)[0], strict=True))
    assert vietnamese["vi*bias"] == 1.0 and vietnamese["vi*chars"] == 0.9 and vietnamese["fr*bias"] == 0.0
    assert vietnamese["follow_up"] == 1.0 and vietnamese["follow_up*cross"] == 1.0


def _reranker(weights: dict[str, float], cross: StubCross, depth: int = 5) -> Reranker:
    coefficients = np.array([weights.get(name, 0.0) for name in FEATURES])
    return Reranker(coefficients, 0.0, depth, cross, {})  # type: ignore[arg-type]


def _pairs() -> list[VerifiedPair]:
    return read_verified([ROOT / "data/qa/train.csv"])


def test_the_reranker_orders_the_first_candidates_and_its_scores_are_chances() -> None:
    passages = load_corpus(ROOT / "data/corpus.jsonl")
    plain = Retriever(passages, _pairs())
    question = "when did he leave vietnam in 1911"
    first = plain.answers.ranked(question, 5)  # type: ignore[union-attr]
    wanted = first[3][0].answer.split()[-1]  # a word of the fourth answer only the fourth holds
    if any(wanted in p.answer for p, _ in first[:3]):
        pytest.skip("no word tells the fourth candidate apart")
    reranked = Retriever(passages, _pairs(), reranker=_reranker({"cross": 1.0}, StubCross(wanted)))
    found = reranked.answers.ranked(question, 5)  # type: ignore[union-attr]
    assert wanted in found[0][0].answer
    assert all(0.0 <= score <= 1.0 for _, score in found)
    assert {p.answer for p, _ in found} == {p.answer for p, _ in first}  # only the first `depth` are re-scored


def test_features_are_what_the_scores_are_the_mean_of() -> None:
    ranker = Retriever(load_corpus(ROOT / "data/corpus.jsonl"), _pairs()).answers
    assert ranker is not None
    question = "who was his father"
    weights = ranker.weights()
    assert np.allclose(ranker.features(question) @ weights / weights.sum(), ranker.scores(question))
    assert weights[3] == 0.0  # no encoder: the meaning term is not computed, nor counted


def _write(folder: Path, **changes: object) -> None:
    document: dict[str, object] = {
        "features": list(FEATURES),
        "coefficients": [0.0] * len(FEATURES),
        "intercept": 0.0,
        "depth": 6,
        "cross_encoder": "x",
    }
    document.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RERANKER_FILE).write_text(json.dumps(document), encoding="utf-8")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"features": ["chars"]}, "other features"),
        ({"coefficients": "many"}, "not a reranker file"),
        ({"depth": 0}, "other features"),
    ],
)
def test_a_bad_reranker_file_is_refused_with_the_command_that_rebuilds_it(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    _write(tmp_path, **changes)
    with pytest.raises(ArtifactError, match=message) as e:
        Reranker.load(tmp_path)
    assert "python -m training.reranker" in str(e.value)


def test_a_missing_reranker_names_its_command(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="python -m training.reranker"):
        Reranker.load(tmp_path)


def test_the_shipped_reranker_loads_with_the_cross_encoder_it_was_fitted_with() -> None:
    reranker = Reranker.load(ROOT / "models/reranker")
    assert reranker.depth >= 3 and reranker.meta["questions"] >= 500
    assert reranker.coefficients[FEATURES.index("cross")] > 0  # a better cross-encoder logit, a better chance


def test_a_reranker_fitted_with_another_cross_encoder_is_refused(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ROOT / "models/reranker", tmp_path / "reranker")
    document = json.loads((tmp_path / "reranker" / RERANKER_FILE).read_text(encoding="utf-8"))
    _write(tmp_path / "reranker", **{**document, "cross_encoder": "0" * 16})
    with pytest.raises(ArtifactError, match="another cross-encoder"):
        Reranker.load(tmp_path / "reranker")
