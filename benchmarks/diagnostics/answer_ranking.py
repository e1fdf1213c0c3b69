"""How the verified-answer score's terms should be weighed, measured on held-out training folds.

    python -m benchmarks.diagnostics.answer_ranking [--folds models/embedder/minilm-hcm-folds]

For each fold K, the encoder trained without fold K's questions (`python -m training.embedder folds`) ranks
fold K's questions among all training answers, as `app.retriever._AnswerIndex` does, with the held-out
questions removed from the hints. Besides the served terms (character n-grams, words, encoder similarity to
the answer), it tries the encoder's similarity to the answer's other questions (best match), and prints
top-1 / top-2 over all folds for a grid of weights. The test split is not read.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from app.corpus import load_corpus
from app.embeddings import Embedder
from app.retriever import Retriever
from app.text import fold_words
from training.embedder import EmbedderConfig, _split, read_pairs


def fold_terms(config: EmbedderConfig, fold: int, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """[questions, answers, 4] term scores (chars, words, encoder to answer, encoder to its questions) and
    the index of each held-out question's answer."""
    pairs = read_pairs(config.train_csv)
    _, held, hints = _split(config, pairs, fold)
    embedder = Embedder(str(folder / f"fold-{fold}"))
    index = Retriever(load_corpus(config.corpus), hints, embedder=embedder)._answers
    assert index is not None and index._vectors is not None
    position = {h.answer: i for i, h in enumerate(index.hints)}
    asked: dict[str, list[str]] = {}
    for h in hints:
        if h.question and h.answer in position:
            asked.setdefault(h.answer, []).append(h.question)
    questions = [pairs.questions[i] for i in held]
    q_vectors = embedder.embed(questions)
    other_q = {a: embedder.embed(qs) for a, qs in asked.items()}
    folded = [fold_words(q) for q in questions]
    chars = (index._chars.transform(folded) @ index._char_matrix.T).toarray()
    words = (index._words.transform(folded) @ index._word_matrix.T).toarray()
    meaning = q_vectors @ index._vectors.T
    similar = np.zeros_like(meaning)
    for a, vectors in other_q.items():
        similar[:, position[a]] = (q_vectors @ vectors.T).max(axis=1)
    targets = np.array([position[pairs.answers[pairs.target[i]]] for i in held])
    return np.stack([chars, words, meaning, similar], axis=-1), targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=Path, default=Path("models/embedder/minilm-hcm-folds"))
    args = parser.parse_args()
    config = EmbedderConfig()
    per_fold = [fold_terms(config, k, args.folds) for k in range(config.folds)]
    results = []
    for weights in itertools.product([0.5], [0.5], [0, 2, 4, 6], [0, 1, 2, 4]):
        ranks = []
        for terms, targets in per_fold:
            scores = terms @ np.array(weights, dtype=float)
            right = scores[np.arange(len(targets)), targets]
            ranks += list((scores > right[:, None]).sum(axis=1))
        r = np.array(ranks)
        results.append({"weights": weights, "top1": round(float((r < 1).mean()), 4),
                        "top2": round(float((r < 2).mean()), 4), "questions": len(r)})  # fmt: skip
    for row in sorted(results, key=lambda x: -x["top1"]):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
