"""The gate's scores at a threshold: error rates and per-class precision, recall and F1."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_fscore_support


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
