"""BM25 retrieval over the corpus: the passages behind an answer and the few sentences put in the prompt."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rank_bm25 import BM25Okapi

from app.kiosk.corpus import Passage
from app.kiosk.embeddings import Embedder
from app.kiosk.verified import AnswerRanker, VerifiedPair
from app.text import sent_tokenize, terms


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
    """Passage-level BM25, then sentence-level BM25 inside the best passages, after the closest verified answers.

    Each verified pair's question words are added to its passages' index entries (document expansion, as in
    doc2query: a visitor's paraphrase often shares more words with an earlier question than with the prose),
    and its answer can itself be retrieved (`answers`), so the model can reuse checked wording.
    """

    def __init__(
        self,
        passages: list[Passage],
        verified: list[VerifiedPair] | None = None,
        top_passages: int = 2,
        max_sentences: int = 3,
        max_words: int = 60,
        max_answers: int = 2,
        embedder: Embedder | None = None,
    ) -> None:
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
        for pair in verified or []:
            self._expand(pair, passage_terms, sentence_terms)
        self._passage_index = BM25Okapi([t or ["_"] for t in passage_terms])
        self._sentence_index = BM25Okapi([t or ["_"] for sents in sentence_terms for t in sents])
        self._sentence_offset = np.cumsum([0] + [len(s) for s in self._sentences])
        self.answers = (
            AnswerRanker(verified or [], self._position, embedder=embedder, passage_scores=self.passage_scores)
            if max_answers
            else None
        )
        self.max_answers = max_answers

    def _expand(
        self, pair: VerifiedPair, passage_terms: list[list[str]], sentence_terms: list[list[list[str]]]
    ) -> None:
        """Add the pair's question terms to its passages and to the sentence that best holds its answer."""
        q, a = terms(pair.question), set(terms(pair.answer))
        for source in pair.source_ids:
            i = self._position.get(source)
            if i is None:
                continue
            passage_terms[i] += q
            overlap = [len(a & set(t)) for t in sentence_terms[i]]
            if overlap and max(overlap) > 0:
                sentence_terms[i][int(np.argmax(overlap))] += q

    def passage_scores(self, query: str) -> np.ndarray:
        """Every passage's BM25 score for `query`, in the corpus' order."""
        return self._passage_index.get_scores(terms(query))

    def search(self, query: str, k: int | None = None) -> list[tuple[Passage, float]]:
        scores = self.passage_scores(query)
        order = np.argsort(-scores, kind="stable")[: k or self.top_passages]
        return [(self.passages[i], float(scores[i])) for i in order if scores[i] > 0]

    @property
    def min_answer_score(self) -> float:
        return self.answers.min_score if self.answers else 1.0

    def context(self, query: str, answers: list[VerifiedPair] | None = None) -> Context:
        """The closest verified answers (or `answers`, ranked by the caller), then the best sentences of the best
        passages, within the word budget."""
        if answers is None:
            answers = self.answers.top(query, self.max_answers) if self.answers else []
        answers = answers[: self.max_answers] if self.answers else []
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
