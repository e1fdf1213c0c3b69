"""Passages of the knowledge base: the unit of retrieval, of citation and of an answer's sources."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from app.artifacts import ArtifactError, atomic_write_text

FIELDS = ("id", "source", "title", "section", "text", "url", "licence")


@dataclass(frozen=True)
class Passage:
    """One retrievable piece of text and where it comes from."""

    id: str
    source: str  # "museum" for the knowledge base, "wikipedia" for scraped pages
    title: str
    section: str
    text: str
    url: str
    licence: str


def write_corpus(path: Path, passages: Iterable[Passage]) -> int:
    lines = [json.dumps(asdict(p), ensure_ascii=False) for p in passages]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)


def load_corpus(path: Path) -> list[Passage]:
    """Read `corpus.jsonl`, failing with the line number on anything malformed."""
    if not path.is_file():
        raise ArtifactError(f"corpus not found: {path} (build it with `python -m training.corpus build`)")
    passages: list[Passage] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                passage = Passage(**{k: str(row[k]) for k in FIELDS})
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ArtifactError(f"{path}:{lineno}: malformed passage ({exc})") from exc
            if passage.id in seen:
                raise ArtifactError(f"{path}:{lineno}: duplicate passage id {passage.id}")
            seen.add(passage.id)
            passages.append(passage)
    if not passages:
        raise ArtifactError(f"corpus {path} holds no passage")
    return passages
