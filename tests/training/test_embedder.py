"""The encoder step: its artefact (written, loaded, refused when corrupt), the fold encoders, and the shipped ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.artifacts import ArtifactError, input_hashes
from app.kiosk.corpus import load_corpus
from app.kiosk.embeddings import (
    EMBEDDER_MANIFEST,
    PACKAGED_MINILM,
    SEED_VECTORS,
    Embedder,
    read_seed,
    resolve,
    text_digest,
    write_seed,
)
from app.kiosk.retriever import Retriever
from app.kiosk.verified import VerifiedPair
from training import qa
from training.answer_ranking import answer_ranks
from training.embedder import served_answers, train, train_folds
from training.embedder_pairs import read_pairs
from training.embedder_training import EmbedderConfig
from training.sft_data import fold_embedders, fold_of

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models/embedder/minilm-hcm"


@pytest.fixture(scope="module")
def trained(small_csv, tmp_path_factory) -> tuple[EmbedderConfig, dict]:
    """Two optimiser steps, no warm-up (the loop itself is proved in test_embedder_training): enough for an artefact."""
    out = tmp_path_factory.mktemp("out") / "encoder"
    config = EmbedderConfig(
        train_csv=small_csv,
        out_dir=out,
        epochs=1,
        batch_size=8,
        warmup_ratio=0.0,
        lora_r=4,
        lora_alpha=8,
        phrasings_dir=None,  # the training questions only (the phrasings' part is tested on its own below)
    )
    return config, train(config, with_seed=False)


def test_training_writes_an_adapter_that_loads_merged_and_changes_the_vectors(trained):
    config, manifest = trained
    folder = config.out_dir
    assert {p.name for p in folder.iterdir()} == {"adapter_config.json", "adapter_model.safetensors", EMBEDDER_MANIFEST}
    assert not any(p.name.startswith(".") for p in folder.parent.iterdir())  # no temporary folder left
    assert manifest["inputs"] == input_hashes([config.train_csv])["inputs"]  # no preset given; `train` reads no corpus
    assert len(manifest["losses"]) == 2 and all(np.isfinite(manifest["losses"]))
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"]) == (4, 8)  # the config's LoRA settings reach the adapter
    assert manifest["base_identity"] == Embedder(PACKAGED_MINILM).identity
    assert resolve(str(folder)) == resolve(PACKAGED_MINILM)  # a tuned folder resolves to its base
    tuned, base = Embedder(str(folder)), Embedder(PACKAGED_MINILM)
    assert tuned.identity.startswith(base.identity + "+")  # cached answer vectors are not shared
    assert "lora" not in " ".join(n for n, _ in tuned.model.named_parameters())  # merged: as fast as the base
    v, w = tuned.embed(["who was bao dai"]), base.embed(["who was bao dai"])
    np.testing.assert_allclose(np.linalg.norm(v), 1.0, rtol=1e-5)
    assert not np.allclose(v, w, atol=1e-3)


def test_a_corrupt_or_mismatched_adapter_is_refused(trained, tmp_path):
    config, _ = trained
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(config.out_dir, broken)
    data = bytearray((broken / "adapter_model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (broken / "adapter_model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        Embedder(str(broken))

    other = tmp_path / "other-base"
    shutil.copytree(config.out_dir, other)
    manifest = json.loads((other / EMBEDDER_MANIFEST).read_text())
    manifest["base_identity"] = "0123456789abcdef"
    (other / EMBEDDER_MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="retrain it"):
        Embedder(str(other))

    del manifest["files"]
    (other / EMBEDDER_MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="has no 'files'"):
        Embedder(str(other))


def test_seed_vectors_are_read_instead_of_encoded_unless_another_encoder_made_them(
    trained, tmp_path, monkeypatch, caplog
):
    import shutil

    folder = tmp_path / "encoder"
    shutil.copytree(trained[0].out_dir, folder)
    known, new = "He was born in Kim Liên in 1890.", "He died in Hanoi in 1969."
    assert write_seed(folder / SEED_VECTORS, Embedder(str(folder)), [known, known]) == 1
    served = Embedder(str(folder))
    encoded: list[str] = []
    real = served._encode
    monkeypatch.setattr(served, "_encode", lambda texts: encoded.extend(texts) or real(texts))
    vectors = served.embed_cached([known, new])
    assert encoded == [new]  # the seeded answer is read, the one added since is encoded
    np.testing.assert_allclose(vectors, Embedder(str(folder)).embed([known, new]), atol=1e-6)
    write_seed(folder / SEED_VECTORS, Embedder(PACKAGED_MINILM), [known])  # the base's vectors, not this encoder's
    other = Embedder(str(folder))
    encoded.clear()
    monkeypatch.setattr(other, "_encode", lambda texts: encoded.extend(texts) or real(texts))
    other.embed_cached([known])
    assert encoded == [known] and "was not made by this encoder" in caplog.text
    (folder / SEED_VECTORS).write_bytes(b"truncated")
    assert read_seed(folder / SEED_VECTORS) is None


def test_the_shipped_encoder_ships_the_vectors_of_every_served_answer():
    seed = read_seed(SHIPPED / SEED_VECTORS)
    rebuild = "python -m training.embedder seed (make embedder writes it)"
    assert seed is not None, f"{SHIPPED / SEED_VECTORS} is missing: {rebuild}"
    identity, digests, vectors = seed
    encoder = Embedder(str(SHIPPED))
    assert identity == encoder.identity, f"the seed vectors are another encoder's: {rebuild}"
    answers = served_answers()
    missing = [a for a in answers if text_digest(a) not in set(digests)]
    assert not missing, f"{len(missing)} served answers have no seed vector (first: {missing[0]!r}): {rebuild}"
    rows = [digests.index(text_digest(a)) for a in answers[:: max(len(answers) // 5, 1)]]
    expected = encoder.embed([answers[:: max(len(answers) // 5, 1)][i] for i in range(len(rows))])
    np.testing.assert_allclose(vectors[rows], expected, atol=1e-5)


def test_a_missing_local_encoder_is_named_not_sought_on_the_hub(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        resolve("models/embedder/no-such-encoder")
    with pytest.raises(ArtifactError, match="not found"):
        resolve(str(tmp_path))  # a folder with no model in it
    assert resolve("owner/model") == "owner/model"


def test_the_shipped_encoder_ranks_test_answers_better_than_the_base():
    """No test answer is a training answer (the split keeps each answer on one side), so each test question's answer
    is ranked among the test answers alone, by its words and meaning: no verified question of theirs is indexed."""
    test = qa.read_pairs(qa.TEST_CSV)
    questions, answers = [p.question for p in test], [p.answer for p in test]
    unseen = [VerifiedPair("", p.answer, p.source_ids) for p in test]
    top1 = {}
    for name in (PACKAGED_MINILM, str(SHIPPED)):
        retriever = Retriever(load_corpus(ROOT / "data/corpus.jsonl"), unseen, embedder=Embedder(name))
        top1[name] = float((answer_ranks(retriever, questions, answers) == 0).mean())
    assert top1[str(SHIPPED)] >= top1[PACKAGED_MINILM] + 0.05, top1


def test_each_fold_encoder_is_trained_without_its_folds_questions(small_csv, tmp_path):
    config = EmbedderConfig(train_csv=small_csv, epochs=1, batch_size=8, folds=2)
    results = train_folds(config, tmp_path / "folds")
    pairs = read_pairs(small_csv)
    for fold in range(2):
        manifest = json.loads((tmp_path / "folds" / f"fold-{fold}" / EMBEDDER_MANIFEST).read_text())
        kept = sum(fold_of(q, 2) != fold for q in pairs.questions)
        assert (manifest["holdout_fold"], manifest["folds"]) == (fold, 2)
        assert len(manifest["losses"]) == -(-kept // 8)  # one epoch over the other fold's questions only
        assert manifest["holdout"] == results[f"fold-{fold}"]
        assert manifest["holdout"]["questions"] == len(pairs.questions) - kept
        assert manifest["inputs"] == input_hashes([small_csv, config.corpus])["inputs"]  # the corpus scores them
    assert len(fold_embedders(tmp_path / "folds", small_csv, 2)) == 2


def test_the_shipped_fold_encoders_match_the_training_data():
    assert len(fold_embedders(ROOT / "models/embedder/minilm-hcm-folds", qa.TRAIN_CSV, 5)) == 5


def test_the_served_encoder_learns_phrasings_of_its_answers_but_never_the_held_out_ones(small_csv, tmp_path):
    import csv

    from app.kiosk.verified import Phrasing
    from training.embedder import training_pairs
    from training.embedder_pairs import with_phrasings

    pairs = read_pairs(small_csv)
    a, b = pairs.answers[:2]
    phrasings = [
        Phrasing(a, "en", "his dad?"),
        Phrasing(b, "vi", "Bác sinh năm nào"),
        Phrasing(b, "fr", "il est né quand ?"),
        Phrasing("an answer of no training question", "en", "who knows"),
    ]
    grown = with_phrasings(pairs, phrasings, left_out={"il est né quand ?"})
    added = list(zip(grown.questions[len(pairs.questions) :], grown.target[len(pairs.questions) :], strict=True))
    assert added == [("his dad?", 0), ("Bác sinh năm nào", 1), ("Bac sinh nam nao", 1)]  # also as typed plain
    assert grown.answers == pairs.answers and grown.questions[: len(pairs.questions)] == pairs.questions

    # phrasings of another QA file's answers (the test split's), when the preset asks for them
    folder = tmp_path / "phrasings"
    folder.mkdir()
    test_csv = tmp_path / "test.csv"
    qa.write_pairs(test_csv, [qa.QAPair("q?", "An answer of the test split.", "t", ("kb-1",))])
    with (folder / "x.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerows([["answer", "language", "question"], ["An answer of the test split.", "en", "test one?"]])
    base = EmbedderConfig(train_csv=small_csv, phrasings_dir=folder)
    assert training_pairs(base).questions == pairs.questions  # its answer is not a training answer
    both = training_pairs(EmbedderConfig(train_csv=small_csv, phrasings_dir=folder, phrasings_also_for=[test_csv]))
    assert both.questions[-1] == "test one?" and both.answers[both.target[-1]] == "An answer of the test split."
