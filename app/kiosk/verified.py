"""Verified question–answer pairs: one type, read once, matched as curated answers and ranked as hints.

Two scorers with two jobs. `CuratedAnswers` compares a visitor's question with the verified questions: a
near-copy of one gets that pair's answer at once, without generation. `AnswerRanker` compares it with the
verified answers, by words and by meaning: the closest go into the prompt for the model to reuse.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from app.kiosk.embeddings import Embedder
from app.text import fold_words


@dataclass(frozen=True)
class VerifiedPair:
    """A checked question–answer pair and the passages it rests on."""

    question: str
    answer: str
    source_ids: tuple[str, ...]


def read_verified(paths: list[Path]) -> list[VerifiedPair]:
    """Verified pairs from CSV files with the columns question, answer and source_ids (space-separated)."""
    pairs = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as f:
            pairs += [
                VerifiedPair(row["question"], row["answer"], tuple(row["source_ids"].split()))
                for row in csv.DictReader(f)
            ]
    return pairs


@dataclass(frozen=True)
class Phrasing:
    """Another way visitors ask a verified answer (`data/qa/phrasings/*.csv`), in English, Vietnamese or French."""

    answer: str
    language: str
    question: str


def read_phrasings(directory: Path | None) -> list[Phrasing]:
    """Every phrasing of the CSV files (`answer,language,question`) in `directory`; none if it is missing."""
    rows: list[Phrasing] = []
    for path in sorted(directory.glob("*.csv")) if directory and directory.is_dir() else []:
        with path.open(encoding="utf-8", newline="") as f:
            rows += [Phrasing(r["answer"], r["language"], r["question"]) for r in csv.DictReader(f)]
    return rows


def read_vietnamese(directory: Path | None) -> dict[str, str]:
    """English verified answer -> its Vietnamese version (`data/qa/vi/*.csv`: `answer,answer_vi`)."""
    versions: dict[str, str] = {}
    for path in sorted(directory.glob("*.csv")) if directory and directory.is_dir() else []:
        with path.open(encoding="utf-8", newline="") as f:
            versions |= {r["answer"]: r["answer_vi"] for r in csv.DictReader(f)}
    return versions


def with_phrasings(pairs: list[VerifiedPair], phrasings: list[Phrasing]) -> list[VerifiedPair]:
    """The verified pairs plus one pair per phrasing of a known answer (same answer, same sources)."""
    sources = {p.answer: p.source_ids for p in pairs}
    return pairs + [
        VerifiedPair(ph.question, ph.answer, sources[ph.answer]) for ph in phrasings if ph.answer in sources
    ]


def example_questions(pairs: list[VerifiedPair], phrasings: list[Phrasing]) -> dict[str, dict[str, str]]:
    """For each answer, one question per language that it answers: what a "did you mean" offers."""
    examples: dict[str, dict[str, str]] = {}
    for p in pairs:
        examples.setdefault(p.answer, {}).setdefault("en", p.question)
    for ph in phrasings:
        if ph.answer in examples:
            examples[ph.answer].setdefault(ph.language, ph.question)
    return examples


@dataclass(frozen=True)
class CuratedMatch:
    pair: VerifiedPair  # the pair whose question is closest
    score: float


class CuratedAnswers:
    """The verified pair whose question is closest to a visitor's, by character n-gram TF-IDF cosine.

    Questions sharing an answer and sources are phrasings of one curated answer: they are indexed together,
    in the order their answer first appears, so that an exact tie goes to the answer read first.
    """

    def __init__(self, pairs: list[VerifiedPair], threshold: float) -> None:
        first_seen: dict[tuple[str, tuple[str, ...]], int] = {}
        for pair in pairs:
            first_seen.setdefault((pair.answer, pair.source_ids), len(first_seen))
        self.pairs = sorted(pairs, key=lambda p: first_seen[(p.answer, p.source_ids)])
        self.threshold = threshold
        self._vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
        questions = [fold_words(p.question) for p in self.pairs]
        self._matrix = self._vectorizer.fit_transform(questions) if questions else None

    def best(self, question: str) -> CuratedMatch | None:
        """The closest pair and its score, whatever the score."""
        if self._matrix is None or not fold_words(question):
            return None
        scores = (self._matrix @ self._vectorizer.transform([fold_words(question)]).T).toarray().ravel()
        i = int(np.argmax(scores))
        return CuratedMatch(self.pairs[i], float(scores[i]))

    def match(self, question: str) -> CuratedMatch | None:
        """The pair whose question is close enough to `question` (KIOSK_CURATED_THRESHOLD), or None."""
        found = self.best(question)
        return found if found and found.score >= self.threshold else None


class AnswerRanker:
    """Distinct verified answers, ranked for a question by how well their own words and meaning match it.

    Score: the weighted mean of the character n-gram cosine (0.5) and word cosine (0.5) between the question and
    the answer, the character n-gram cosine to the answer's closest known question (QUESTION_WEIGHT), the MiniLM
    cosine to the answer (4; with an embedder) and the BM25 match of its source passage (SOURCE_WEIGHT; when the
    ranker has the corpus' passage scores). With the base MiniLM the weights were chosen on the training questions, each
    left out in turn, over a grid that also offered similarity to the answer's other questions (it got
    weight 0: visitors' phrasings resemble the answer more than each other): top-1 / top-2 0.52 / 0.68
    there, against 0.40 / 0.53 for character n-grams alone. The encoder fine-tuned on the training
    questions (`training.embedder`) earns a larger share: on held-out training folds, top-1 0.63 with
    weight 4 against 0.62 with weight 2 (and 0.55 for the base).
    """

    WEIGHTS = (0.5, 0.5, 4.0)
    QUESTION_WEIGHT = 4.0
    """Weight of the character n-gram cosine to the answer's closest verified question or phrasing (English,
    Vietnamese, French). On a held-out fifth of the phrasings (`python -m training.thresholds`), first answer
    right: 0.423 without it, 0.478 / 0.490 / 0.493 / 0.446 with weight 1 / 2 / 4 / 8."""

    SOURCE_WEIGHT = 2.5
    """Weight of how well the answer's best source passage matches the question by BM25 (over the knowledge base,
    its passages expanded with the verified questions and phrasings; scaled so the best passage scores 1). On the
    validation set's single questions (written apart, from the knowledge base only), first answer states the key
    facts: 0.785 without it, 0.814 / 0.825 / 0.835 / 0.832 with weight 0.65 / 1.3 / 2.6 / 3.9 (English 0.781 ->
    0.828, Vietnamese 0.855 -> 0.891, French 0.700 -> 0.775 at 2.6; 2.5 is served, and measured on held-out
    phrasings: 0.809 -> 0.820); with it, one of the first three answers states them 0.955 of the time. Known
    weakness: scaled to the best passage for the same question, the term tells little for a question whose best
    passage matches weakly ("when exactly"), and lowers every score where none matches ("when")."""

    def __init__(
        self,
        pairs: list[VerifiedPair],
        known: Collection[str],
        min_score: float = 0.2,
        embedder: Embedder | None = None,
        passage_scores: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        """`known`: the passage ids of the corpus, in the order of `passage_scores`' scores (a mapping id -> position,
        or any collection when there are none); a pair none of whose sources is known is left out."""
        grouped: dict[str, tuple[VerifiedPair, list[str]]] = {}
        for p in pairs:
            if any(s in known for s in p.source_ids):
                grouped.setdefault(p.answer, (p, []))[1].append(p.question)
        self.pairs = [pair for pair, _ in grouped.values()]  # one per distinct answer
        self._passage_scores = passage_scores if isinstance(known, Mapping) else None
        positions = known if isinstance(known, Mapping) else {}
        self._sources = [[positions[s] for s in p.source_ids if s in positions] for p in self.pairs]
        self.min_score = min_score
        self.embedder = embedder
        answers = [fold_words(p.answer) for p in self.pairs]
        vocabulary = answers + [fold_words(q) for _, questions in grouped.values() for q in questions]
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        self._words = TfidfVectorizer(analyzer="word", sublinear_tf=True, stop_words="english")
        self._char_matrix = self._word_matrix = None
        self._vectors: np.ndarray | None = None
        questions = [(i, fold_words(q)) for i, (_, qs) in enumerate(grouped.values()) for q in qs]
        self._owner = np.array([i for i, _ in questions], dtype=np.int64)
        self._question_matrix = None
        if self.pairs:
            self._char_matrix = self._chars.fit(vocabulary).transform(answers)
            self._word_matrix = self._words.fit(vocabulary).transform(answers)
            self._question_matrix = self._chars.transform([q for _, q in questions])
            if embedder is not None:
                self._vectors = embedder.embed_cached([p.answer for p in self.pairs])

    def scores(self, query: str) -> np.ndarray:
        """The score of each of `pairs`' answers for `query`."""
        folded = fold_words(query)
        if self._char_matrix is None or self._word_matrix is None or not folded:
            return np.zeros(len(self.pairs))
        w_char, w_word, w_meaning = self.WEIGHTS
        chars = self._chars.transform([folded]).T
        total = w_char * (self._char_matrix @ chars).toarray().ravel()
        total += w_word * (self._word_matrix @ self._words.transform([folded]).T).toarray().ravel()
        weight = w_char + w_word
        if self.QUESTION_WEIGHT and self._question_matrix is not None:
            closest = np.zeros(len(self.pairs))  # each answer's closest question, in any language
            np.maximum.at(closest, self._owner, (self._question_matrix @ chars).toarray().ravel())
            total += self.QUESTION_WEIGHT * closest
            weight += self.QUESTION_WEIGHT
        if self._vectors is not None and self.embedder is not None:
            total += w_meaning * (self._vectors @ self.embedder.embed([query])[0])
            weight += w_meaning
        if self._passage_scores is not None and self.SOURCE_WEIGHT:
            passages = self._passage_scores(query)
            best = float(passages.max()) if len(passages) else 0.0
            if best > 0:
                total += (
                    self.SOURCE_WEIGHT
                    * np.array([max(passages[self._sources[i]], default=0.0) for i in range(len(self.pairs))])
                    / best
                )
            weight += self.SOURCE_WEIGHT
        return total / weight

    def ranked(
        self,
        query: str,
        k: int,
        near: Collection[str] = (),
        bonus: float = 0.0,
        *,
        topic: str | None = None,
        topic_weight: float = 0.0,
    ) -> list[tuple[VerifiedPair, float]]:
        """The `k` best answers (their pairs) with their scores, best first, whatever the scores; answers told
        from a passage in `near` get `bonus` added. With a `topic` (the question a follow-up leans on), the score
        is the weighted mean of the query's and, `topic_weight` times as much, the topic's."""
        scores = self.scores(query)
        if topic is not None and topic_weight:
            scores = (scores + topic_weight * self.scores(topic)) / (1 + topic_weight)
        if near and bonus:
            told = set(near)
            scores = scores + bonus * np.array([not told.isdisjoint(p.source_ids) for p in self.pairs])
        return [(self.pairs[i], float(scores[i])) for i in np.argsort(-scores, kind="stable")[:k]]

    def top(self, query: str, k: int) -> list[VerifiedPair]:
        """The `k` best answers (their pairs) scoring at least `min_score`, best first."""
        scores = self.scores(query)
        order = np.argsort(-scores, kind="stable")[:k]
        return [self.pairs[i] for i in order if scores[i] >= self.min_score]
