"""A learned second look at the answer ranker's first candidates: how likely each one is to be right.

`AnswerRanker.scores` is a fixed weighted mean of five match terms, with weights chosen by hand on held-out
phrasings, and one scale for every language: a Vietnamese question typed with diacritics scores lower against
the same right answer than an English one (its words meet English answers only through the phrasings), so the
"not sure" threshold was too strict for it and too lax for others. The reranker is a logistic regression over
those terms, the mean and its gap to the best candidate, each per language, for the first `depth` candidates. It
was fitted (`python -m training.reranker`) on visitor questions written apart from the answers
(`data/rerank/`), each candidate labelled right when it states the question's key facts, so its score is a
probability: the "not sure" threshold means the same thing in every language.

It is a JSON file of coefficients (no pickle): loading it runs no code, and any version of scikit-learn or none
reads it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.artifacts import ArtifactError, atomic_write_text, read_manifest, sha256_file, verify_file
from app.kiosk.embeddings import base_identity, resolve

RERANKER_FILE = "reranker.json"
CROSS_MANIFEST = "cross_encoder.json"
CROSS_FOLDER = "cross"
CROSS_MAX_LENGTH = 96
TERMS = ("chars", "words", "question", "meaning", "source")
LANGUAGE_COLUMNS = ("vi", "fr")  # English is the baseline
_BASE = (*TERMS, "mean", "gap", "first", "cross", "cross_gap")
FEATURES = (
    *_BASE,
    *(f"{lang}*{name}" for lang in LANGUAGE_COLUMNS for name in (*_BASE, "bias")),
    "follow_up",
    "follow_up*mean",
    "follow_up*cross",
)
"""Per candidate: the ranker's five terms, their weighted mean, its gap to the best candidate's, whether it is the
ranker's first, the cross-encoder's logit and its gap to the best candidate's; then each of these again times "the
question is Vietnamese" / "French", and those two flags; then whether the question was read with the one it leans
on (its terms are then a mix of both), alone and times the mean and the logit."""


def rows(features: np.ndarray, mean: np.ndarray, cross: np.ndarray, language: str, follow_up: bool = False) -> np.ndarray:
    """The reranker's inputs ([n, len(FEATURES)]) for n candidates, best-ranked first: their `features` (the
    ranker's TERMS columns), `mean` (the ranker's score) and `cross` (the cross-encoder's logits); `follow_up`:
    read with the question it leans on."""
    n = len(mean)
    first = np.zeros(n)
    first[:1] = 1.0
    top, top_cross = (mean.max(), cross.max()) if n else (0.0, 0.0)
    base = np.column_stack([features, mean, mean - top, first, cross, cross - top_cross])
    with_bias = np.column_stack([base, np.ones(n)])
    blocks = [base] + [with_bias * (language == lang) for lang in LANGUAGE_COLUMNS]
    blocks.append(np.column_stack([np.ones(n), mean, cross]) * follow_up)
    return np.hstack(blocks)


@dataclass(frozen=True)
class Reranker:
    coefficients: np.ndarray
    intercept: float
    depth: int
    """How many of the ranker's first candidates are re-scored; the rest keep no chance of coming first."""
    cross: CrossEncoder
    meta: dict[str, Any]

    def probabilities(
        self,
        question: str,
        answers: list[str],
        features: np.ndarray,
        mean: np.ndarray,
        language: str,
        follow_up: bool = False,
    ) -> np.ndarray:
        """The chance that each candidate answer (best-ranked first) states what the visitor asked in `question`."""
        if not len(mean):
            return np.zeros(0)
        logits = rows(features, mean, self.cross.scores(question, answers), language, follow_up) @ self.coefficients
        return 1.0 / (1.0 + np.exp(-(logits + self.intercept)))

    def save(self, folder: Path) -> None:
        """Write the coefficients beside the cross-encoder's folder (`folder / "cross"`, written by
        `python -m training.cross_encoder`), with the adapter's hash they were fitted with."""
        folder.mkdir(parents=True, exist_ok=True)
        document = {
            "cross_encoder": self.cross.identity,
            "features": list(FEATURES),
            "coefficients": [round(float(c), 8) for c in self.coefficients],
            "intercept": round(float(self.intercept), 8),
            "depth": self.depth,
            **self.meta,
        }
        atomic_write_text(folder / RERANKER_FILE, json.dumps(document, indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Reranker:
        path = folder / RERANKER_FILE
        if not path.is_file():
            raise ArtifactError(f"{path} not found: build it with python -m training.reranker")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            names, coefficients = document["features"], np.asarray(document["coefficients"], dtype=np.float64)
            intercept, depth = float(document["intercept"]), int(document["depth"])
        except (ValueError, KeyError, TypeError) as e:
            raise ArtifactError(f"{path} is not a reranker file ({e}): rebuild it with python -m training.reranker") from e
        if list(names) != list(FEATURES) or coefficients.shape != (len(FEATURES),) or depth < 1:
            raise ArtifactError(
                f"{path} was fitted on other features than this code computes: "
                "rebuild it with python -m training.reranker"
            )
        cross = CrossEncoder(folder / CROSS_FOLDER)
        if document.get("cross_encoder") != cross.identity:
            raise ArtifactError(
                f"{path} was fitted with another cross-encoder than {folder / CROSS_FOLDER}: refit it with "
                "python -m training.reranker"
            )
        meta = {k: v for k, v in document.items() if k not in ("features", "coefficients", "intercept", "depth")}
        return cls(coefficients, intercept, depth, cross, meta)


class CrossEncoder:
    """all-MiniLM-L6-v2 with a LoRA adapter and a one-logit head (`python -m training.cross_encoder`), reading a
    question and an answer together: how well the answer answers it, as a logit. Checked against its manifest and
    merged into the base on loading."""

    def __init__(self, folder: Path) -> None:
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        manifest = read_manifest(folder / CROSS_MANIFEST)
        base = resolve(str(manifest.get("base", "")))
        if manifest.get("base_identity") != base_identity(base):
            raise ArtifactError(
                f"{folder} was trained on other base weights than {base}: retrain it with python -m training.cross_encoder"
            )
        for file, digest in manifest.get("files", {}).items():
            verify_file(folder / file, digest)
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32)
        self.model = PeftModel.from_pretrained(model, folder).merge_and_unload().eval()
        self.identity = sha256_file(folder / "adapter_model.safetensors")[:16]
        self._lock = threading.Lock()  # one question at a time (the tokenizer is not safe across threads)

    @torch.inference_mode()
    def scores(self, question: str, answers: list[str]) -> np.ndarray:
        """The logit of each answer for `question`."""
        if not answers:
            return np.zeros(0)
        with self._lock:
            batch = self.tokenizer(
                [question] * len(answers),
                answers,
                padding=True,
                truncation=True,
                max_length=CROSS_MAX_LENGTH,
                return_tensors="pt",
            )
            return self.model(**batch).logits[:, 0].double().numpy()
