"""Everything the generator is given for one question: context sentences, sources and the prompt text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.kiosk.corpus import Passage, load_corpus
from app.kiosk.embeddings import Embedder
from app.kiosk.retriever import Context, Retriever
from app.kiosk.verified import VerifiedPair, read_verified
from app.prompt import Turn, build_prompt, ends_cleanly


@dataclass(frozen=True)
class Grounded:
    prompt: str
    context: Context
    question: str = ""


def build_retriever(corpus: Path, verified_files: list[Path], embedder: Embedder | None = None) -> Retriever:
    passages: list[Passage] = load_corpus(corpus)
    return Retriever(passages, read_verified([p for p in verified_files if p.exists()]), embedder=embedder)


def ground(
    question: str,
    retriever: Retriever | None,
    history: tuple[Turn, ...] = (),
    query: str = "",
    answers: list[VerifiedPair] | None = None,
) -> Grounded:
    """Retrieve for `query` (the question, or a follow-up resolved against its conversation, so that it finds its
    subject); the earlier turns go into the prompt either way. `answers`: the verified answers to offer, best
    first, where the caller has ranked them (without those the conversation has already given)."""
    if retriever is None:
        return Grounded(build_prompt(question, "", history), Context([], [], []), question)
    context = retriever.context(query or question, answers)
    return Grounded(build_prompt(question, context.text, history), context, question)


def readable(generated: str, context: Context) -> tuple[str, bool]:
    """What the visitor reads: the generated answer if it ends cleanly, else the first complete context sentence.

    A small model sometimes stops mid-sentence (the token budget, a deadline) or produces nothing usable.
    The context lists the closest verified answers first, then passage sentences in reading order: the
    fallback is verified text about the nearest question, complete, though it may answer a neighbouring
    question rather than this one. Returns (text, whether it is the fallback).
    """
    if ends_cleanly(generated):
        return generated, False
    fallback = next((s for s in context.sentences if ends_cleanly(s)), None)
    return (fallback, True) if fallback else (generated, False)
