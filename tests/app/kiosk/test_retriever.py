"""Retrieval over the shipped corpus: relevant sentences for visitors' wording, within the word budget."""

from __future__ import annotations

import pytest

from app.kiosk.corpus import Passage, load_corpus
from app.kiosk.retriever import Retriever
from app.kiosk.verified import VerifiedPair
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    return Retriever(load_corpus(ROOT / "data/corpus.jsonl"))


def test_finds_the_passage_about_the_declaration(retriever):
    context = retriever.context("who read the declaration of independence in ba dinh square")
    assert "1945" in context.text and any("august-revolution" in p.id for p in context.passages)
    assert len(context.text.split()) <= retriever.max_words + 40  # one long sentence may exceed the budget


def test_sentences_come_in_reading_order_and_sources_are_their_passages(retriever):
    context = retriever.context("where was ho chi minh born and who were his parents")
    ids = {p.id for p in context.passages}
    assert ids and all(i.startswith("kb-") for i in ids)
    assert 1 <= len(context.sentences) <= retriever.max_sentences


def test_nonsense_gets_no_context(retriever):
    assert retriever.context("zzzz qqqq").passages == []


def test_hints_pull_a_paraphrase_to_its_passage():
    texts = [
        "His father was a Confucian scholar.",
        "He travelled to France in 1911.",
        "He died in 1969.",
        "He founded the Việt Minh in 1941.",
        "He read the declaration in 1945.",
    ]
    passages = [Passage(f"p{i}", "museum", "T", "S", t, "", "") for i, t in enumerate(texts, 1)]
    plain = Retriever(passages)
    assert plain.search("what was his dad's job") == []
    hinted = Retriever(passages, [VerifiedPair("what job did his dad have", "A Confucian scholar.", ("p1",))])
    assert hinted.search("what was his dad's job")[0][0].id == "p1"


def test_readable_keeps_a_clean_answer_and_replaces_an_unfinished_one():
    from app.kiosk.grounding import readable
    from app.kiosk.retriever import Context

    context = Context(["He was born in 1890", "He was born in Kim Liên in 1890."], [], [])
    assert readable("He was born in 1890.", context) == ("He was born in 1890.", False)
    assert readable("He was born in", context) == ("He was born in Kim Liên in 1890.", True)
    assert readable("", context) == ("He was born in Kim Liên in 1890.", True)
    assert readable("He was born in", Context([], [], [])) == ("He was born in", False)
