"""The gate's scores at a threshold: error rates, per-class precision, recall and F1, and shares per language and
kind."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from app.kiosk.language import LANGUAGES
from training.gate_data import Example


def error_rates(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false-accept rate among off-topic questions, false-refusal rate among related ones)."""
    accepted = scores >= threshold
    far = float(accepted[labels == 0].mean()) if (labels == 0).any() else 0.0
    frr = float((~accepted[labels == 1]).mean()) if (labels == 1).any() else 0.0
    return far, frr


def metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (scores >= threshold).astype(int)
    p, r, f, n = precision_recall_fscore_support(labels, predicted, labels=[1, 0], zero_division=0)
    far, frr = error_rates(labels, scores, threshold)
    out = {"false_accept_rate": far, "false_refusal_rate": frr}
    for i, name in enumerate(("related", "not_related")):
        out |= {f"{name}_precision": p[i], f"{name}_recall": r[i], f"{name}_f1": f[i], f"{name}_n": int(n[i])}
    return {k: round(float(v), 4) for k, v in out.items()}


# The rows the issue sets targets on, per language: (title, label, which kinds).
_TARGET_ROWS: tuple[tuple[str, int, Callable[[str], bool]], ...] = (
    ("hard negatives accepted", 0, lambda kind: kind != "general"),
    ("general questions accepted", 0, lambda kind: kind == "general"),
    ("fragments recalled", 1, lambda kind: kind in ("fragment", "pronoun")),
    ("QA questions recalled", 1, lambda kind: kind == "qa"),
)


def target_rows(examples: list[Example], scores: np.ndarray, threshold: float) -> dict[str, tuple[float, int]]:
    """{row: (share accepted, n)}: the related F1 over all questions, then hard negatives and general questions
    accepted, fragments (no subject, or only "he") and the QA set's questions recalled, each per language."""
    accepted = np.asarray(scores) >= threshold
    labels = np.array([e.label for e in examples])
    out = {"related F1": (float(metrics(labels, np.asarray(scores), threshold)["related_f1"]), len(examples))}
    for title, label, of_kind in _TARGET_ROWS:
        for lang in LANGUAGES:
            chosen = np.array([e.label == label and e.language == lang and of_kind(e.kind) for e in examples])
            share = float(accepted[chosen].mean()) if chosen.any() else float("nan")
            out[f"{title} ({lang})"] = (share, int(chosen.sum()))
    return out


def cells(examples: list[Example], scores: np.ndarray, threshold: float) -> list[tuple[str, str, int, int, int]]:
    """(language, kind, label, n, accepted) for every (language, kind, label) cell, sorted."""
    accepted = np.asarray(scores) >= threshold
    counts: dict[tuple[str, str, int], list[int]] = {}
    for e, a in zip(examples, accepted, strict=True):
        cell = counts.setdefault((e.language, e.kind, e.label), [0, 0])
        cell[0] += 1
        cell[1] += int(a)
    return [(lang, kind, label, n, a) for (lang, kind, label), (n, a) in sorted(counts.items())]
