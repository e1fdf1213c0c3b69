"""The relevance gate: is a visitor's question about Ho Chi Minh? Decided on one CPU core within a few ms: a linear
first stage, and a second one (`app.kiosk.gate_review`) for the questions the first is unsure of."""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import joblib
import numpy as np
import scipy.sparse as sp
import sklearn
from rank_bm25 import BM25Okapi
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import normalize

from app.artifacts import ArtifactError, read_manifest, verify_file
from app.kiosk.gate_review import SecondStage
from app.text import fold, terms

log = logging.getLogger(__name__)
T = TypeVar("T")
MODEL_FILE = "gate.joblib"
REVIEW_FILE = "review.joblib"
MANIFEST_FILE = "manifest.json"


# The city, the road and the man share a name; visitors ask about all three. One token each lets the model tell
# them apart and treats every name of the man alike (most related questions use only one of them). In every
# language: "TP.HCM", "tp hồ chí minh", "Hô-Chi-Minh-Ville" are the city, "đường (mòn) Hồ Chí Minh", "piste
# Hô Chi Minh" the road; left to the man's pattern they made city and trekking questions name him.
_NAME = r"(?:ho[ -]chi[ -]minh|hochiminh)"
_CITY = re.compile(
    rf"\b(?:{_NAME}[ -](?:city|ville|stock exchange)|hcm ?(?:city|ville)|hcmc|hcmv|tp\.? ?(?:hcm|{_NAME})"
    rf"|thanh pho (?:hcm|{_NAME})|(?:city|ville) (?:of |de )?{_NAME})\b"
)
_ROAD = re.compile(
    rf"\b(?:{_NAME} (?:trail|highway|road|route)|(?:duong mon|duong|piste|route|sentier) (?:de )?{_NAME})\b"
)
_PERSON = re.compile(
    rf"\b(?:(?:chu tich|president|chairman|uncle|bac|oncle|tonton) (?:{_NAME}|ho)|{_NAME}|ho chu tich"
    r"|nguyen ai quoc|nguyen tat thanh|nguyen sinh cung)\b"
)


def gate_text(text: str) -> str:
    """Folded (lower-case, no diacritics: "Bác Hồ" = "bac ho"), with the city, the road and the man as single
    tokens."""
    return _PERSON.sub(" hcmperson ", _ROAD.sub(" hcmroad ", _CITY.sub(" hcmcity ", fold(text))))


class MentionsHim(TransformerMixin, BaseEstimator):
    """One feature, 1.0 when the question names him (any of his names), else 0.0.

    In the TF-IDF vectors his name is one token among many, diluted by the length of the question; the
    errors were questions built like ours about someone else ("who was X", "X quotes", "X how did he die").
    This says outright whether the subject is him, whatever else the question holds.
    """

    def fit(self, questions: list[str], y: Any = None) -> MentionsHim:
        return self

    def transform(self, questions: list[str]) -> sp.csr_matrix:
        return sp.csr_matrix(np.array([[self.value(q)] for q in questions], dtype=np.float64).reshape(-1, 1))

    @staticmethod
    def value(question: str) -> float:
        return 1.0 if "hcmperson" in gate_text(question).split() else 0.0


class KnowledgeCoverage(TransformerMixin, BaseEstimator):
    """One feature: how well the museum's knowledge base covers the question's words.

    The best BM25 score of any passage (`_CoverageBM25`), per distinct content word of the question, as
    log(1 + s). The errors were questions shaped like ours about things the museum does not tell (other
    leaders, other wars); their words are rare or absent in the knowledge base. The passages are part of
    the fitted artefact, so the feature is computed the same way wherever the gate is loaded.
    """

    def __init__(self, passages: tuple[str, ...] = (), k1: float = 1.5, b: float = 0.75) -> None:
        self.passages = passages
        self.k1 = k1
        self.b = b

    def fit(self, questions: list[str], y: Any = None) -> KnowledgeCoverage:
        self.index_ = _CoverageBM25([terms(p) for p in self.passages], k1=self.k1, b=self.b)
        return self

    def transform(self, questions: list[str]) -> sp.csr_matrix:
        return sp.csr_matrix(np.array([[self.value(q)] for q in questions], dtype=np.float64).reshape(-1, 1))

    def value(self, question: str) -> float:
        asked = set(terms(question))
        known = sorted(t for t in asked if t in self.index_.idf)
        if not known:
            return 0.0
        return math.log1p(float(self.index_.get_scores(known).max()) / len(asked))


class _CoverageBM25(BM25Okapi):
    """rank_bm25's Okapi BM25 (the retriever's) with Lucene's idf, log(1 + (n - df + 0.5) / (df + 0.5)): never
    negative, so a word found in most passages still adds a little (Okapi's idf is floored there instead)."""

    def _calc_idf(self, nd: dict[str, int]) -> None:
        for word, df in nd.items():
            self.idf[word] = math.log((self.corpus_size - df + 0.5) / (df + 0.5) + 1)


class UnknownWords(TransformerMixin, BaseEstimator):
    """One feature: the share of the question's content words that the knowledge base never uses.

    `KnowledgeCoverage` rewards the best-matching passage, so one word the museum happens to use ("book",
    "issue", "code") could carry a question of otherwise foreign words; this counts the rest. Both the
    question and the passages go through `gate_text`, so his names and the city's are one word each.
    """

    def __init__(self, passages: tuple[str, ...] = ()) -> None:
        self.passages = passages

    def fit(self, questions: list[str], y: Any = None) -> UnknownWords:
        # A dict built in sorted order, not a set: a set's pickled order changes between processes.
        self.vocabulary_ = dict.fromkeys(sorted({t for p in self.passages for t in terms(gate_text(p))}), True)
        return self

    def transform(self, questions: list[str]) -> sp.csr_matrix:
        return sp.csr_matrix(np.array([[self.value(q)] for q in questions], dtype=np.float64).reshape(-1, 1))

    def value(self, question: str) -> float:
        words = terms(gate_text(question))
        return sum(w not in self.vocabulary_ for w in words) / len(words) if words else 0.0


def build_pipeline(c: float = 4.0, seed: int = 0, passages: tuple[str, ...] = ()) -> Pipeline:
    """Word n-grams for meaning, character n-grams so typos and missing accents still match, whether the
    question names him, and (given the knowledge base's passages) how well the museum's texts cover it and how
    many of its words they never use."""
    parts: list[tuple[str, Any]] = [
        ("words", TfidfVectorizer(preprocessor=gate_text, ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
        (
            "chars",
            TfidfVectorizer(
                preprocessor=gate_text,
                analyzer="char_wb",
                ngram_range=(2, 5),
                min_df=2,
                sublinear_tf=True,
                max_features=150_000,
            ),
        ),
        ("names_him", MentionsHim()),
    ]
    if passages:
        parts += [("coverage", KnowledgeCoverage(passages)), ("unknown_words", UnknownWords(passages))]
    features = FeatureUnion(parts)
    classifier = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    return Pipeline([("features", features), ("classifier", classifier)])


def sklearn_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def tfidf_vectors(pipeline: Pipeline, questions: list[str]) -> sp.csr_matrix:
    """The questions' word and character TF-IDF vectors side by side, scaled to unit length: the space in which
    the second stage finds a question's neighbours (`LinearScorer.score` gives the same vector for one)."""
    union: FeatureUnion = pipeline.named_steps["features"]
    parts = [t.transform(questions) for _, t in union.transformer_list if isinstance(t, TfidfVectorizer)]
    return normalize(sp.hstack(parts).tocsr())


class LinearScorer:
    """The fitted pipeline's arithmetic for one question, without scikit-learn's per-call checks.

    TF-IDF (sublinear tf, idf, l2 norm) per vectorizer, plus the weights of `MentionsHim`,
    `KnowledgeCoverage` and `UnknownWords`, dot product with the logistic regression's weights, sigmoid: the
    same numbers as `predict_proba`, about twenty times sooner for a single question.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        union: FeatureUnion = pipeline.named_steps["features"]
        classifier: LogisticRegression = pipeline.named_steps["classifier"]
        if union.transformer_weights or classifier.coef_.shape[0] != 1:
            raise ArtifactError("the gate pipeline has a shape the fast scorer does not know")
        weights = classifier.coef_.ravel()
        self.intercept = float(classifier.intercept_[0])
        self.parts = []
        self.names_him_weight = 0.0
        self.coverage: tuple[KnowledgeCoverage, float] | None = None
        self.unknown: tuple[UnknownWords, float] | None = None
        offset = 0
        tfidf_offset = 0  # where each vectorizer's terms start in `tfidf_vectors`
        for _, transformer in union.transformer_list:
            if isinstance(transformer, MentionsHim):
                self.names_him_weight = float(weights[offset])
                offset += 1
            elif isinstance(transformer, KnowledgeCoverage):
                self.coverage = (transformer, float(weights[offset]))
                offset += 1
            elif isinstance(transformer, UnknownWords):
                self.unknown = (transformer, float(weights[offset]))
                offset += 1
            elif isinstance(transformer, TfidfVectorizer):
                n = len(transformer.vocabulary_)
                analyzer, idf = transformer.build_analyzer(), transformer.idf_
                self.parts.append(
                    (
                        analyzer,
                        transformer.vocabulary_,
                        idf,
                        weights[offset : offset + n],
                        transformer.sublinear_tf,
                        transformer.norm,
                        tfidf_offset,
                    )
                )
                offset += n
                tfidf_offset += n
            else:
                raise ArtifactError(f"the fast scorer does not know the gate feature {type(transformer).__name__}")
        if offset != weights.size:
            raise ArtifactError("the gate's features and its classifier's weights differ in number")

    def __call__(self, question: str) -> float:
        return self.score(question)[0]

    def score(self, question: str) -> tuple[float, np.ndarray, np.ndarray]:
        """The probability, and the question's unit TF-IDF vector as (term indices, values)."""
        z = self.intercept + self.names_him_weight * MentionsHim.value(question)
        if self.coverage is not None:
            coverage, weight = self.coverage
            z += weight * coverage.value(question)
        if self.unknown is not None:
            unknown, weight = self.unknown
            z += weight * unknown.value(question)
        indices, vectors = [], []
        for analyzer, vocabulary, idf, weights, sublinear, norm, start in self.parts:
            counts = Counter(vocabulary[t] for t in analyzer(question) if t in vocabulary)
            if not counts:
                continue
            index = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            values = (1.0 + np.log(tf) if sublinear else tf) * idf[index]
            if norm == "l2":
                values /= np.sqrt(values @ values)
            z += float(values @ weights[index])
            indices.append(index + start)
            vectors.append(values)
        index = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
        values = np.concatenate(vectors) if vectors else np.zeros(0)
        if values.size:
            values = values / np.sqrt(values @ values)
        return 1.0 / (1.0 + math.exp(-z)), index, values


@dataclass
class RelevanceGate:
    """A fitted pipeline (the first stage), the second stage when the artefact has one, and the decision
    threshold chosen on validation data."""

    pipeline: Pipeline
    threshold: float
    manifest: dict[str, Any]
    review: SecondStage | None = None
    scorer: LinearScorer | None = None

    def __post_init__(self) -> None:
        self.scorer = LinearScorer(self.pipeline)
        probes = ["when was he born", "best pho in saigon?", "Bác Hồ", "x"]
        slow = self.pipeline.predict_proba(probes)[:, 1]
        if not np.allclose([self.scorer(q) for q in probes], slow, atol=1e-9):
            raise ArtifactError("the gate's fast scorer disagrees with its pipeline")
        if self.review is not None:
            try:
                self.review.check()
            except (ValueError, AttributeError, KeyError) as exc:  # a model of another shape or version
                raise ArtifactError(f"the gate's second stage cannot be scored fast: {exc}") from exc

    @classmethod
    def load(cls, path: Path) -> RelevanceGate:
        """Load `path/gate.joblib` (and `path/review.joblib` where the manifest names one) only if they match
        `path/manifest.json` (hashes and scikit-learn version)."""
        manifest = read_manifest(path / MANIFEST_FILE)
        try:
            expected_hash, built_with = manifest["sha256"], manifest["sklearn_version"]
            threshold = float(manifest["threshold"])
            review_hash = manifest["review"]["sha256"] if manifest.get("review") else None
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{path / MANIFEST_FILE}: missing or bad field {exc}") from exc
        if sklearn_minor(built_with) != sklearn_minor(sklearn.__version__):
            raise ArtifactError(
                f"the gate in {path} was built with scikit-learn {built_with}, this is {sklearn.__version__}: "
                "rebuild it with `python -m training.classifier train`"
            )
        pipeline = _load_checked(path / MODEL_FILE, expected_hash, Pipeline)
        review = _load_checked(path / REVIEW_FILE, review_hash, SecondStage) if review_hash else None
        return cls(pipeline=pipeline, threshold=threshold, manifest=manifest, review=review)

    def relevance(self, question: str) -> float:
        """Probability (0–1) that the question is about Ho Chi Minh, after every stage."""
        assert self.scorer is not None
        first, index, values = self.scorer.score(question)
        if self.review is not None and self.review.applies(first):
            return self.review.score(question, first, index, values)
        return first

    def relevances(self, questions: list[str]) -> np.ndarray:
        """`relevance` of many questions at once (evaluation): the same numbers, in matrix arithmetic."""
        first = self.pipeline.predict_proba(questions)[:, 1]
        if self.review is None:
            return first
        return self.review.scores(questions, first, tfidf_vectors(self.pipeline, questions))

    def is_related(self, question: str) -> bool:
        return self.relevance(question) >= self.threshold


def _load_checked(path: Path, expected_hash: str, kind: type[T]) -> T:
    """joblib.load `path` only once its sha256 matches the manifest's (joblib.load can execute code)."""
    verify_file(path, expected_hash)
    try:
        obj = joblib.load(path)
    except (ImportError, AttributeError) as exc:  # it names classes that moved or went away
        raise ArtifactError(
            f"{path} names code this version does not have ({exc}): rebuild it "
            "with `python -m training.classifier train`"
        ) from exc
    if not isinstance(obj, kind):
        raise ArtifactError(f"{path} does not hold a {kind.__name__}")
    return obj
