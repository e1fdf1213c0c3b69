"""Where a question's own verified answer ranks, as serving ranks them, and what copying the first would score."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.kiosk.corpus import load_corpus
from app.kiosk.embeddings import Embedder
from app.kiosk.retriever import Retriever
from app.kiosk.verified import VerifiedPair
from training.embedder_pairs import Pairs
from training.metrics import Scores, score


def answer_ranks(retriever: Retriever, questions: list[str], answers: list[str]) -> np.ndarray:
    """Position (0 = first) of each question's answer among the verified answers, as serving ranks them."""
    index = retriever.answers
    if index is None:
        raise ValueError("the retriever has no verified answers")
    position = {h.answer: i for i, h in enumerate(index.pairs)}
    ranks = []
    for question, answer in zip(questions, answers, strict=True):
        order = np.argsort(-index.scores(question), kind="stable")
        found = np.flatnonzero(order == position.get(answer, -1))
        ranks.append(int(found[0]) if len(found) else len(order))
    return np.array(ranks)


def top_k(ranks: np.ndarray) -> dict[str, float]:
    return {f"top{k}": round(float((ranks < k).mean()), 4) for k in (1, 2, 5)} | {"questions": len(ranks)}


def copying_first(retriever: Retriever, questions: list[str], answers: list[str]) -> Scores:
    """How replies that copied the first verified answer would score: the ceiling copying sets."""
    assert retriever.answers is not None
    first = [next(iter(retriever.answers.top(q, 1)), None) for q in questions]
    return score(answers, [h.answer if h else "" for h in first])


def held_out_ranks(
    corpus: Path, pairs: Pairs, held: list[int], hints: list[VerifiedPair], embedder: Embedder | None
) -> dict[str, float]:
    """How the held-out rows' answers rank with `hints` (which leave their questions out), and copying's key facts."""
    retriever = Retriever(load_corpus(corpus), hints, embedder=embedder)
    answers = [pairs.answers[pairs.target[i]] for i in held]
    questions = [pairs.questions[i] for i in held]
    ranks = top_k(answer_ranks(retriever, questions, answers))
    return ranks | {"copy_key_fact": copying_first(retriever, questions, answers).key_fact_accuracy}
