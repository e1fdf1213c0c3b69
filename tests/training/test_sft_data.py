"""Training prompts: each fold's contexts come from that fold's own encoder, and only a matching one is used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.artifacts import ArtifactError, input_hashes
from app.kiosk.corpus import Passage
from training.qa import QAPair
from training.sft_data import fold_embedders, fold_of, make_examples


class RecordingEmbedder:
    """Stands in for one fold's encoder: remembers which questions it was asked to encode."""

    dim = 4

    def __init__(self) -> None:
        self.questions: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.questions += texts
        return np.ones((len(texts), self.dim), dtype=np.float32) / 2

    def embed_cached(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), self.dim), dtype=np.float32) / 2


def test_each_question_is_ranked_by_the_encoder_of_its_own_fold():
    texts = ["Ho Chi Minh was born in Kim Lien in 1890.", "He read the declaration of independence in 1945."]
    passages = [Passage(f"p{i}", "museum", "Life", "", text, "", "") for i, text in enumerate(texts, 1)]
    pairs = [
        QAPair(f"question number {i} about his birth?", "He was born in Kim Lien in 1890.", "life", ("p1",))
        for i in range(20)
    ]
    embedders = [RecordingEmbedder() for _ in range(5)]
    examples = make_examples(pairs, passages, True, embedders=embedders)  # type: ignore[arg-type]
    assert len(examples) == 20 and all(e.context.sentences for e in examples)
    for pair in pairs:
        fold = fold_of(pair.question, 5)
        assert [pair.question in e.questions for e in embedders].count(True) == 1
        assert pair.question in embedders[fold].questions


def _fold_folder(root: Path, fold: int, folds: int, inputs: dict[str, str]) -> None:
    path = root / f"fold-{fold}"
    path.mkdir(parents=True)
    manifest = {
        "base": "packaged:minilm",
        "base_identity": "x",
        "files": {},
        "holdout_fold": fold,
        "folds": folds,
        "inputs": inputs,
    }
    (path / "embedder.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_fold_encoders_that_do_not_match_the_folds_or_the_data_are_refused(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("question,answer,topic,source_ids\n", encoding="utf-8")
    data = input_hashes([train])["inputs"]
    with pytest.raises(ArtifactError, match="fold-0 is missing"):
        fold_embedders(tmp_path / "folds", train, 2)
    _fold_folder(tmp_path / "swapped", 0, 2, data)
    _fold_folder(tmp_path / "swapped", 1, 3, data)
    with pytest.raises(ArtifactError, match="did not hold out fold 1 of 2"):
        fold_embedders(tmp_path / "swapped", train, 2)
    _fold_folder(tmp_path / "stale", 0, 2, dict.fromkeys(data, "0" * 64))
    with pytest.raises(ArtifactError, match="other data"):
        fold_embedders(tmp_path / "stale", train, 2)
