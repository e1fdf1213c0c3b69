"""The relevance gate: is a visitor's question about Ho Chi Minh? Decided on the CPU in well under 2 ms."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from app.artifacts import ArtifactError, read_manifest, verify_file
from app.text import fold

log = logging.getLogger(__name__)
MODEL_FILE = "gate.joblib"
MANIFEST_FILE = "manifest.json"


# The city and the man share a name; visitors ask about both. One token each lets the model tell them apart
# and treats every name of the man alike (most related questions use only one of them).
_CITY = re.compile(r"\b(ho chi minh city|hcm city|hcmc|tp ?hcm|thanh pho ho chi minh)\b")
_PERSON = re.compile(r"\b(ho chi minh|uncle ho|bac ho|nguyen ai quoc|nguyen tat thanh|nguyen sinh cung|chu tich ho)\b")


def gate_text(text: str) -> str:
    """Folded (lower-case, no diacritics: "Bác Hồ" = "bac ho"), with the city and the man as single tokens."""
    return _PERSON.sub(" hcmperson ", _CITY.sub(" hcmcity ", fold(text)))


def build_pipeline(c: float = 4.0, seed: int = 0) -> Pipeline:
    """Word n-grams for meaning, character n-grams so typos and missing accents still match."""
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(preprocessor=gate_text, ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
            ("chars", TfidfVectorizer(preprocessor=gate_text, analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                      sublinear_tf=True, max_features=150_000)),
        ]
    )  # fmt: skip
    classifier = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    return Pipeline([("features", features), ("classifier", classifier)])


def sklearn_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


@dataclass
class RelevanceGate:
    """A fitted pipeline and the decision threshold chosen on validation data."""

    pipeline: Pipeline
    threshold: float
    manifest: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> RelevanceGate:
        """Load `path/gate.joblib` only if it matches `path/manifest.json` (hash and scikit-learn version)."""
        manifest = read_manifest(path / MANIFEST_FILE)
        try:
            expected_hash, built_with = manifest["sha256"], manifest["sklearn_version"]
            threshold = float(manifest["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{path / MANIFEST_FILE}: missing or bad field {exc}") from exc
        if sklearn_minor(built_with) != sklearn_minor(sklearn.__version__):
            raise ArtifactError(
                f"the gate in {path} was built with scikit-learn {built_with}, this is {sklearn.__version__}: "
                "rebuild it with `python -m training.classifier train`"
            )
        verify_file(path / MODEL_FILE, expected_hash)  # before joblib.load, which can execute code
        pipeline = joblib.load(path / MODEL_FILE)
        if not isinstance(pipeline, Pipeline):
            raise ArtifactError(f"{path / MODEL_FILE} does not hold a scikit-learn Pipeline")
        return cls(pipeline=pipeline, threshold=threshold, manifest=manifest)

    def relevance(self, question: str) -> float:
        """Probability (0–1) that the question is about Ho Chi Minh."""
        return float(self.pipeline.predict_proba([question])[0, 1])

    def is_related(self, question: str) -> bool:
        return self.relevance(question) >= self.threshold
