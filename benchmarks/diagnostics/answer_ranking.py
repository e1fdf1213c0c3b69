"""How the verified-answer score's terms should be weighed, measured on held-out training folds.

    python -m benchmarks.diagnostics.answer_ranking [--folds models/embedder/minilm-hcm-folds]

For each fold K, the encoder trained without fold K's questions (`python -m training.embedder folds`) ranks
fold K's questions among all training answers, as `app.kiosk.verified.AnswerRanker` does, with the held-out
questions removed from the hints. Besides the served terms (character n-grams, words, encoder similarity to
the answer), it tries the encoder's similarity to the answer's other questions (best match), and prints
top-1 / top-2 over all folds for a grid of weights. The test split is not read.

Result (2026-11-26, 1,015 held-out questions over 5 folds): the served weights (0.5 characters, 0.5 words,
4 encoder-to-answer) rank the right answer first for 0.618 (top-2 0.767). Nothing else helps: similarity to
the answer's other questions (any weight: 0.53 or less), the better of that and the answer's, BM25 of the
answer's passages (0.619 at best, within noise) and a prior for answers asked often (0.60 or less).

Second stages tried on held-out fold 0 (2026-11-27, throwaway scripts, not kept): a cross-encoder (MiniLM + LoRA
+ a linear head on the pair, trained listwise on each training question's right answer against the fold
encoder's 7 best wrong ones) over the first 10: alone 0.43 after one epoch and 0.46 after two, and no
weight of it added to the served score beat the served score alone (0.632); token-level late interaction
(ColBERT-style MaxSim over the fold encoder's token vectors, folds 0 and 1) 0.644 → 0.644 at best.
A third, the base SmolLM2 scoring each of the first 5 answers by the likelihood of the question given it,
was stopped unfinished: ~7 s a question on 2 cores, more than a generated answer costs.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from app.kiosk.corpus import load_corpus
from app.kiosk.embeddings import Embedder
from app.kiosk.retriever import Retriever
from app.text import fold_words, terms
from training.embedder_pairs import fold_split, read_pairs
from training.embedder_training import EmbedderConfig

TERMS = (
    "chars",
    "words",
    "encoder: answer",
    "encoder: its questions",
    "encoder: answer or its questions",
    "BM25 of its passages",
    "log(1 + its questions)",
)


def fold_terms(config: EmbedderConfig, fold: int, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """[questions, answers, len(TERMS)] term scores and the index of each held-out question's answer."""
    pairs = read_pairs(config.train_csv)
    _, held, hints = fold_split(pairs, config.train_csv, config.folds, fold)
    embedder = Embedder(str(folder / f"fold-{fold}"))
    retriever = Retriever(load_corpus(config.corpus), hints, embedder=embedder)
    index = retriever.answers
    assert index is not None and index._vectors is not None
    assert index._char_matrix is not None and index._word_matrix is not None
    position = {h.answer: i for i, h in enumerate(index.pairs)}
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
    passage = {p.id: i for i, p in enumerate(retriever.passages)}
    bm25 = np.zeros_like(meaning)
    for row, q in enumerate(questions):
        scores = retriever._passage_index.get_scores(terms(q))
        scores = scores / max(float(scores.max()), 1e-9)
        for col, h in enumerate(index.pairs):
            bm25[row, col] = max((scores[passage[s]] for s in h.source_ids if s in passage), default=0.0)
    count = np.log1p([len(asked.get(h.answer, [])) for h in index.pairs])[None, :].repeat(len(questions), 0)
    stacked = [chars, words, meaning, similar, np.maximum(meaning, similar), bm25, count]
    return np.stack(stacked, axis=-1), targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=Path, default=Path("models/embedder/minilm-hcm-folds"))
    args = parser.parse_args()
    config = EmbedderConfig()
    per_fold = [fold_terms(config, k, args.folds) for k in range(config.folds)]
    results: list[dict[str, Any]] = []
    grid = itertools.product([0.5], [0.5], [2, 4, 6], [0], [0, 1, 2, 4], [0, 0.5, 1, 2], [0, 0.1, 0.2, 0.4])
    for weights in grid:
        ranks = []
        for values, targets in per_fold:
            scores = values @ np.array(weights, dtype=float)
            right = scores[np.arange(len(targets)), targets]
            ranks += list((scores > right[:, None]).sum(axis=1))
        r = np.array(ranks)
        results.append(
            {
                "weights": weights,
                "top1": round(float((r < 1).mean()), 4),
                "top2": round(float((r < 2).mean()), 4),
                "questions": len(r),
            }
        )
    print("terms:", TERMS)
    for row in sorted(results, key=lambda x: -x["top1"])[:25]:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
