"""The gate's second stage: a question the first stage is unsure about is judged again beside its nearest
training questions.

The first stage (`app.kiosk.gate`) weighs each word and character n-gram on its own, the same in every
question; the errors left were Vietnamese and French questions built like ours about something else ("các mác
sinh năm nào", "saison des pluies à hcm ville") and subjectless fragments ("tea or coffee"). The second stage
sees where the question lies among the training questions (its best cosine similarity to a related one and to
an off-topic one, and the related share of its ten nearest) together with the first stage's score, its length
and its language, and a small gradient-boosted model decides. It runs only when the first stage's score falls
inside `low`–`high`; outside, the first stage's score stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier

from app.kiosk.language import detect

FEATURES = ("first_logit", "best_related", "best_off_topic", "margin", "near_related", "words", "vi", "fr")


@dataclass
class Neighbours:
    """Training questions as unit vectors in the first stage's word and character TF-IDF space (the English
    general questions left out: far from everything the gate hesitates on, they only cost time)."""

    by_term: sp.csr_matrix
    """[n_terms, n_questions]: one row per n-gram, so a question's few n-grams pick out the rows it needs."""
    labels: np.ndarray
    k: int = 10

    @classmethod
    def build(cls, vectors: sp.csr_matrix, labels: np.ndarray, k: int = 10) -> Neighbours:
        return cls(sp.csr_matrix(vectors.T, dtype=np.float32), np.asarray(labels, dtype=np.int8), k)

    def similarities(self, vectors: sp.csr_matrix) -> np.ndarray:
        """[n, n_questions] cosine similarities of unit-length rows."""
        return np.asarray((vectors.astype(np.float32) @ self.by_term).todense())

    def similarity(self, index: np.ndarray, values: np.ndarray) -> np.ndarray:
        """[n_questions] cosine similarities of one unit vector given by its non-zero terms."""
        return np.asarray(self.by_term[index].T @ values.astype(np.float32)).ravel()

    def summary(self, similarities: np.ndarray) -> np.ndarray:
        """[n, 4]: best similarity to a related question, to an off-topic one, their difference, and the related
        share of the k nearest, each weighted by its similarity to the fourth power (the nearest count most)."""
        s = np.atleast_2d(similarities)
        related = self.labels[None, :] == 1
        best_related = np.where(related, s, -1.0).max(axis=1)
        best_off = np.where(related, -1.0, s).max(axis=1)
        k = min(self.k, s.shape[1])
        nearest = np.argpartition(-s, k - 1, axis=1)[:, :k]
        weight = np.clip(np.take_along_axis(s, nearest, axis=1), 0.0, None) ** 4
        share = (weight * self.labels[nearest]).sum(axis=1) / np.maximum(weight.sum(axis=1), 1e-9)
        return np.column_stack([best_related, best_off, best_related - best_off, share])


def dense_features(questions: list[str], first: np.ndarray, summary: np.ndarray) -> np.ndarray:
    """The second stage's inputs, in the order of `FEATURES`."""
    p = np.clip(np.asarray(first, dtype=np.float64), 1e-6, 1 - 1e-6)
    languages = [detect(q) for q in questions]
    return np.column_stack(
        [
            np.log(p / (1 - p)),
            summary,
            [len(q.split()) for q in questions],
            [lang == "vi" for lang in languages],
            [lang == "fr" for lang in languages],
        ]
    ).astype(np.float64)


class TreeScorer:
    """The fitted gradient-boosted trees' arithmetic for one row, without scikit-learn's per-call work.

    `predict_proba` walks its 300 trees one Python call each (~2 ms for one question); here every tree takes
    its next step at once, in numpy. It reads the model's fitted trees (`_predictors`, `_baseline_prediction`,
    scikit-learn's own names): `SecondStage.check` compares its numbers with `predict_proba` at every load.
    """

    def __init__(self, model: HistGradientBoostingClassifier) -> None:
        trees = [predictors[0].nodes for predictors in model._predictors]  # binary: one tree per iteration
        if any(t["is_categorical"].any() for t in trees):
            raise ValueError("the fast tree scorer does not know categorical splits")
        starts = np.cumsum([0] + [len(t) for t in trees[:-1]])
        nodes = np.concatenate(trees)
        shift = np.repeat(starts, [len(t) for t in trees])
        self.roots = starts.astype(np.int64)
        self.feature = nodes["feature_idx"].astype(np.int64)
        self.threshold = nodes["num_threshold"]
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        self.left = nodes["left"].astype(np.int64) + shift
        self.right = nodes["right"].astype(np.int64) + shift
        self.leaf = nodes["is_leaf"].astype(bool)
        self.value = nodes["value"]
        self.baseline = float(np.ravel(model._baseline_prediction)[0])

    def __call__(self, x: np.ndarray) -> float:
        node = self.roots
        while not self.leaf[node].all():
            v = x[self.feature[node]]
            left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
            node = np.where(self.leaf[node], node, np.where(left, self.left[node], self.right[node]))
        return 1.0 / (1.0 + math.exp(-(self.baseline + float(self.value[node].sum()))))


@dataclass
class SecondStage:
    """Neighbours, the model over `FEATURES`, and the band of first-stage scores it judges."""

    neighbours: Neighbours
    model: HistGradientBoostingClassifier
    low: float
    high: float
    trees: TreeScorer | None = field(default=None, repr=False)

    def check(self) -> None:
        """Build the fast tree scorer and make sure it gives the model's numbers (raises ValueError if not)."""
        self.trees = TreeScorer(self.model)
        rng = np.random.default_rng(0)
        probes = np.column_stack(
            [rng.normal(0, 4, 64), rng.uniform(-1, 1, (64, 4)), rng.integers(1, 30, 64), rng.integers(0, 2, (64, 2))]
        )
        slow = self.model.predict_proba(probes)[:, 1]
        if not np.allclose([self.trees(x) for x in probes], slow, atol=1e-9):
            raise ValueError("the second stage's fast tree scorer disagrees with its model")

    def applies(self, first: float) -> bool:
        return self.low <= first <= self.high

    def score(self, question: str, first: float, index: np.ndarray, values: np.ndarray) -> float:
        """Probability that the question is related, for one question inside the band."""
        summary = self.neighbours.summary(self.neighbours.similarity(index, values))
        x = dense_features([question], np.array([first]), summary)
        if self.trees is None:
            return float(self.model.predict_proba(x)[0, 1])
        return self.trees(x[0])

    def scores(self, questions: list[str], first: np.ndarray, vectors: sp.csr_matrix) -> np.ndarray:
        """Every question's final score: the second stage's inside the band, the first stage's outside."""
        out = np.asarray(first, dtype=np.float64).copy()
        inside = np.flatnonzero((out >= self.low) & (out <= self.high))
        for start in range(0, inside.size, 1000):  # similarities are dense: a thousand rows at a time
            rows = inside[start : start + 1000]
            summary = self.neighbours.summary(self.neighbours.similarities(vectors[rows]))
            x = dense_features([questions[i] for i in rows], out[rows], summary)
            out[rows] = self.model.predict_proba(x)[:, 1]
        return out
