"""Fitting the gate's second stage (`app.kiosk.gate_review`) on out-of-fold first-stage scores and neighbours.

A training question's own first-stage score, and its neighbours among questions that include itself and its
paraphrases, look far surer than a visitor's new question would: the second stage would learn to trust them.
So each fold's scores come from a first stage fitted without that fold, and its neighbours from the other folds
only; the folds keep the paraphrases of one verified answer together.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from app.kiosk.gate import tfidf_vectors
from app.kiosk.gate_review import Neighbours, SecondStage, dense_features
from app.text import fold_words
from training.gate_data import Example

log = logging.getLogger(__name__)


def fold_of(example: Example, folds: int) -> int:
    """The paraphrases of one verified answer share a fold; other questions go by their folded text."""
    key = example.answer or fold_words(example.text)
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % folds


def is_reference(example: Example) -> bool:
    """Neighbours are looked for among every training question but the English general ones."""
    return not (example.group == "general" and example.language == "en")


def out_of_fold(
    pipeline: Pipeline, examples: list[Example], weights: np.ndarray, folds: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(first-stage scores, neighbour summaries) of every training question, each from the other folds.

    The features are those of the fitted `pipeline` (its vocabularies and idf saw every fold: they hold no
    label); only the logistic regression is fitted again without the fold."""
    texts = [e.text for e in examples]
    labels = np.array([e.label for e in examples])
    features = pipeline.named_steps["features"].transform(texts).tocsr()
    vectors = tfidf_vectors(pipeline, texts)
    fold = np.array([fold_of(e, folds) for e in examples])
    reference = np.array([is_reference(e) for e in examples])
    first = np.zeros(len(examples))
    summary = np.zeros((len(examples), 4))
    for f in range(folds):
        held = fold == f
        classifier = clone(pipeline.named_steps["classifier"])
        classifier.fit(features[~held], labels[~held], sample_weight=weights[~held])
        first[held] = classifier.predict_proba(features[held])[:, 1]
        keep = reference & ~held
        neighbours = Neighbours.build(vectors[keep], labels[keep], k)
        rows = np.flatnonzero(held)
        for start in range(0, rows.size, 1000):
            chunk = rows[start : start + 1000]
            summary[chunk] = neighbours.summary(neighbours.similarities(vectors[chunk]))
        log.info("second stage: fold %d of %d done", f + 1, folds)
    return first, summary


def fit_review(
    pipeline: Pipeline,
    examples: list[Example],
    weights: np.ndarray,
    band: tuple[float, float],
    folds: int = 4,
    k: int = 10,
    seed: int = 0,
) -> SecondStage:
    """The second stage for a first stage fitted on `examples`, trained on the questions whose out-of-fold
    first-stage score falls in `band` (where it will judge)."""
    first, summary = out_of_fold(pipeline, examples, weights, folds, k)
    texts = [e.text for e in examples]
    labels = np.array([e.label for e in examples])
    inside = (first >= band[0]) & (first <= band[1])
    log.info("second stage: %d training questions in the band (%d related)", inside.sum(), labels[inside].sum())
    x = dense_features([t for t, i in zip(texts, inside, strict=True) if i], first[inside], summary[inside])
    model = HistGradientBoostingClassifier(
        learning_rate=0.05, max_iter=300, max_leaf_nodes=15, class_weight="balanced", random_state=seed
    )
    model.fit(x, labels[inside], sample_weight=weights[inside])
    reference = np.array([is_reference(e) for e in examples])
    neighbours = Neighbours.build(
        tfidf_vectors(pipeline, [t for t, r in zip(texts, reference, strict=True) if r]), labels[reference], k
    )
    return SecondStage(neighbours, model, band[0], band[1])
