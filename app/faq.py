"""The staff-edited FAQ (opening hours, tickets, toilets…): loading and similarity matching."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from app.artifacts import ArtifactError
from app.matcher import PhraseMatcher


@dataclass(frozen=True)
class FAQEntry:
    id: str
    questions: tuple[str, ...]
    answer: str


class FAQ(PhraseMatcher[FAQEntry]):
    """The staff FAQ: a question is matched to the closest listed phrasing."""

    def __init__(self, entries: list[FAQEntry], threshold: float = 0.55) -> None:
        super().__init__(entries, [e.questions for e in entries], threshold)
        self.entries = entries


def load_faq(path: Path, threshold: float = 0.55) -> FAQ:
    """Read the FAQ YAML, failing with a message that staff can act on."""
    if not path.is_file():
        raise ArtifactError(f"FAQ file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"FAQ file {path} is not valid YAML: {exc}") from exc
    entries = []
    seen: set[str] = set()
    for n, raw in enumerate(data.get("entries") or [], 1):
        if not isinstance(raw, dict):
            raise ArtifactError(f"{path}: entry {n} is not a mapping")
        entry_id = str(raw.get("id") or "").strip()
        questions = tuple(str(q).strip() for q in raw.get("questions") or [] if str(q).strip())
        answer = str(raw.get("answer") or "").strip()
        if not entry_id or not questions or not answer:
            raise ArtifactError(f"{path}: entry {n} needs an id, at least one question and an answer")
        if entry_id in seen:
            raise ArtifactError(f"{path}: entry id {entry_id!r} appears twice")
        seen.add(entry_id)
        entries.append(FAQEntry(entry_id, questions, answer))
    return FAQ(entries, threshold)
