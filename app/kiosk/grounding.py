"""Everything the generator is given for one question: context sentences, sources and the prompt text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.kiosk.corpus import Passage, load_corpus
from app.kiosk.embeddings import Embedder
from app.kiosk.retriever import Context, Hint, Retriever
from app.prompt import Turn, build_prompt, ends_cleanly


@dataclass(frozen=True)
class Grounded:
    prompt: str
    context: Context


def load_hints(paths: list[Path]) -> list[Hint]:
    """Verified QA pairs (CSV with question, answer, source_ids) that expand the retrieval index."""
    import csv

    hints = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                hints.append(Hint(row["question"], row["answer"], tuple(row["source_ids"].split())))
    return hints


def build_retriever(corpus: Path, hint_files: list[Path], embedder: Embedder | None = None) -> Retriever:
    passages: list[Passage] = load_corpus(corpus)
    return Retriever(passages, load_hints([p for p in hint_files if p.exists()]), embedder=embedder)


def ground(question: str, retriever: Retriever | None, history: tuple[Turn, ...] = ()) -> Grounded:
    """Retrieve for the question (with the previous question, so that follow-ups find their subject)."""
    if retriever is None:
        return Grounded(build_prompt(question, "", history), Context([], [], []))
    query = " ".join([t.question for t in history[-1:]] + [question])
    context = retriever.context(query)
    return Grounded(build_prompt(question, context.text, history), context)


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
