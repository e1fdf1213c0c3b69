"""BM25 retrieval over the corpus: the passages behind an answer and the few sentences put in the prompt."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rank_bm25 import BM25Okapi
from sklearn.feature_extraction.text import TfidfVectorizer

from app.kiosk.corpus import Passage
from app.kiosk.embeddings import Embedder
from app.text import fold_words, sent_tokenize, terms


@dataclass(frozen=True)
class Hint:
    """A verified question–answer pair and the passages it rests on.

    Its question's words are added to those passages' index entries (document expansion, as in doc2query:
    a visitor's paraphrase often shares more words with an earlier question than with the prose), and its
    answer can itself be retrieved, so the model can reuse checked wording for a new phrasing.
    """

    question: str
    answer: str
    source_ids: tuple[str, ...]


@dataclass(frozen=True)
class Context:
    """What the model reads: selected sentences, and the passages they come from (the answer's sources)."""

    sentences: list[str]
    passages: list[Passage]
    scores: list[float]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


class Retriever:
    """Passage-level BM25, then sentence-level BM25 inside the best passages."""

    def __init__(self, passages: list[Passage], hints: list[Hint] | None = None, top_passages: int = 2,
                 max_sentences: int = 3, max_words: int = 60, max_answers: int = 2,
                 embedder: Embedder | None = None) -> None:  # fmt: skip
        if not passages:
            raise ValueError("the retriever needs at least one passage")
        self.passages = passages
        self.top_passages = top_passages
        self.max_sentences = max_sentences
        self.max_words = max_words
        self._position = {p.id: i for i, p in enumerate(passages)}
        self._sentences = [sent_tokenize(p.text) for p in passages]
        passage_terms = [terms(p.text) for p in passages]
        sentence_terms = [[terms(s) for s in sents] for sents in self._sentences]
        for hint in hints or []:
            self._expand(hint, passage_terms, sentence_terms)
        self._passage_index = BM25Okapi([t or ["_"] for t in passage_terms])
        self._sentence_index = BM25Okapi([t or ["_"] for sents in sentence_terms for t in sents])
        self._sentence_offset = np.cumsum([0] + [len(s) for s in self._sentences])
        self._answers = _AnswerIndex(hints or [], self._position, embedder=embedder) if max_answers else None
        self.max_answers = max_answers

    def _expand(self, hint: Hint, passage_terms: list[list[str]], sentence_terms: list[list[list[str]]]) -> None:
        """Add the hint's question terms to its passages and to the sentence that best holds its answer."""
        q, a = terms(hint.question), set(terms(hint.answer))
        for source in hint.source_ids:
            i = self._position.get(source)
            if i is None:
                continue
            passage_terms[i] += q
            overlap = [len(a & set(t)) for t in sentence_terms[i]]
            if overlap and max(overlap) > 0:
                sentence_terms[i][int(np.argmax(overlap))] += q

    def search(self, query: str, k: int | None = None) -> list[tuple[Passage, float]]:
        scores = self._passage_index.get_scores(terms(query))
        order = np.argsort(-scores, kind="stable")[: k or self.top_passages]
        return [(self.passages[i], float(scores[i])) for i in order if scores[i] > 0]

    def context(self, query: str) -> Context:
        """The closest verified answers, then the best sentences of the best passages, within the word budget."""
        answers = self._answers.top(query, self.max_answers) if self._answers else []
        words_left = self.max_words - sum(len(a.answer.split()) for a in answers)
        found = self._sentences_for(query, max(words_left, 0))
        sources = [self.passages[self._position[s]] for a in answers for s in a.source_ids if s in self._position]
        passages = list({p.id: p for p in sources + found.passages}.values())
        return Context([a.answer for a in answers] + found.sentences, passages, found.scores)

    def _sentences_for(self, query: str, max_words: int) -> Context:
        """The best sentences of the best passages, in reading order, within `max_words`."""
        q = terms(query)
        hits = self.search(query)
        if not hits or max_words <= 0:
            return Context([], [], [])
        sentence_scores = self._sentence_index.get_scores(q)
        candidates = []  # (score, passage rank, sentence position, passage index)
        for rank, (passage, _) in enumerate(hits):
            i = self._position[passage.id]
            for j in range(len(self._sentences[i])):
                candidates.append((float(sentence_scores[self._sentence_offset[i] + j]), rank, j, i))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        chosen: list[tuple[int, int, int]] = []
        budget = max_words
        for score, rank, j, i in candidates:
            n = len(self._sentences[i][j].split())
            if len(chosen) < self.max_sentences and (n <= budget or not chosen) and score > 0:
                chosen.append((rank, j, i))
                budget -= n
        if not chosen:
            _, _, j, i = candidates[0]
            chosen = [(0, j, i)]
        chosen.sort()
        used = list(dict.fromkeys(i for _, _, i in chosen))
        return Context(
            sentences=[self._sentences[i][j] for _, j, i in chosen],
            passages=[self.passages[i] for i in used],
            scores=[s for p, s in hits if self._position[p.id] in used],
        )


class _AnswerIndex:
    """Distinct verified answers, ranked for a question by how well their own words and meaning match it.

    Score: (0.5 · character n-gram cosine + 0.5 · word cosine + 4 · MiniLM cosine) / 5, each between the
    question and the answer. With the base MiniLM the weights were chosen on the training questions, each
    left out in turn, over a grid that also offered similarity to the answer's other questions (it got
    weight 0: visitors' phrasings resemble the answer more than each other): top-1 / top-2 0.52 / 0.68
    there, against 0.40 / 0.53 for character n-grams alone. The encoder fine-tuned on the training
    questions (`training.embedder`) earns a larger share: on held-out training folds, top-1 0.63 with
    weight 4 against 0.62 with weight 2 (and 0.55 for the base). Without an embedder, the first two terms only.
    """

    WEIGHTS = (0.5, 0.5, 4.0)

    def __init__(self, hints: list[Hint], known: dict[str, int], min_score: float = 0.2,
                 embedder: Embedder | None = None) -> None:  # fmt: skip
        grouped: dict[str, tuple[Hint, list[str]]] = {}
        for h in hints:
            if any(s in known for s in h.source_ids):
                grouped.setdefault(h.answer, (h, []))[1].append(h.question)
        self.hints = [hint for hint, _ in grouped.values()]
        self.min_score = min_score
        self.embedder = embedder
        answers = [fold_words(h.answer) for h in self.hints]
        vocabulary = answers + [fold_words(q) for _, questions in grouped.values() for q in questions]
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        self._words = TfidfVectorizer(analyzer="word", sublinear_tf=True, stop_words="english")
        self._char_matrix = self._word_matrix = None
        self._vectors: np.ndarray | None = None
        if self.hints:
            self._char_matrix = self._chars.fit(vocabulary).transform(answers)
            self._word_matrix = self._words.fit(vocabulary).transform(answers)
            if embedder is not None:
                self._vectors = embedder.embed_cached([h.answer for h in self.hints])

    def scores(self, query: str) -> np.ndarray:
        folded = fold_words(query)
        if self._char_matrix is None or self._word_matrix is None or not folded:
            return np.zeros(len(self.hints))
        w_char, w_word, w_meaning = self.WEIGHTS
        total = w_char * (self._char_matrix @ self._chars.transform([folded]).T).toarray().ravel()
        total += w_word * (self._word_matrix @ self._words.transform([folded]).T).toarray().ravel()
        weight = w_char + w_word
        if self._vectors is not None and self.embedder is not None:
            total += w_meaning * (self._vectors @ self.embedder.embed([query])[0])
            weight += w_meaning
        return total / weight

    def top(self, query: str, k: int) -> list[Hint]:
        scores = self.scores(query)
        order = np.argsort(-scores, kind="stable")[:k]
        return [self.hints[i] for i in order if scores[i] >= self.min_score]
