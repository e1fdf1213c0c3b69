"""Documents (a museum chapter or a Wikipedia page), their cutting into passages, and the corpus they make."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.kiosk.corpus import Passage, write_corpus
from app.text import clean_whitespace, fold, sent_tokenize

KNOWLEDGE_DIR = Path("data/knowledge")
CORPUS = Path("data/corpus.jsonl")
MAX_PASSAGE_WORDS = 120
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
REQUIRED_META = ("title", "topic", "licence", "attribution", "url")


@dataclass
class Document:
    """Text blocks grouped by section, with the provenance every passage inherits."""

    slug: str  # the id prefix: "kb-early-life", "wp-ho-chi-minh"
    source: str
    title: str
    url: str
    licence: str
    topic: str = ""
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def add(self, section: str, block: str) -> None:
        block = clean_whitespace(block)
        if not block:
            return
        if not self.sections or self.sections[-1][0] != section:
            self.sections.append((section, []))
        self.sections[-1][1].append(block)


def split_block(block: str, max_words: int = MAX_PASSAGE_WORDS) -> list[str]:
    """Cut a paragraph at sentence boundaries into chunks of at most `max_words` words.

    A single sentence longer than the limit stays whole: cutting it would separate a fact from its subject.
    """
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    for sentence in sent_tokenize(block):
        n = len(sentence.split())
        if current and count + n > max_words:
            chunks.append(" ".join(current))
            current, count = [], 0
        current.append(sentence)
        count += n
    if current:
        chunks.append(" ".join(current))
    return chunks


def passages(doc: Document) -> Iterator[Passage]:
    """Number the document's passages in order: `<slug>-01`, `<slug>-02`, …"""
    n = 0
    for section, blocks in doc.sections:
        for block in blocks:
            for chunk in split_block(block):
                n += 1
                yield Passage(
                    id=f"{doc.slug}-{n:02d}",
                    source=doc.source,
                    title=doc.title,
                    section=section,
                    text=chunk,
                    url=doc.url,
                    licence=doc.licence,
                )


def _strip_markdown(text: str) -> str:
    return _MD_EMPHASIS.sub("", _MD_LINK.sub(r"\1", text))


def read_chapter(path: Path) -> Document:
    """Parse a knowledge-base chapter (front matter, `##` sections, paragraphs and list items)."""
    raw = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    match = _FRONT_MATTER.match(raw)
    if not match:
        raise ValueError(f"{path}: missing front matter (--- title/topic/licence/attribution/url ---)")
    meta = yaml.safe_load(match.group(1)) or {}
    missing = [k for k in REQUIRED_META if not meta.get(k)]
    if missing:
        raise ValueError(f"{path}: front matter lacks {', '.join(missing)}")
    doc = Document(
        slug=f"kb-{path.stem}",
        source="museum",
        title=str(meta["title"]),
        url=str(meta["url"]),
        licence=str(meta["licence"]),
        topic=str(meta["topic"]),
    )
    section, paragraph = str(meta["title"]), list[str]()
    for line in raw[match.end() :].split("\n") + [""]:
        stripped = line.strip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if heading or not stripped or stripped.startswith(("- ", "* ")):
            doc.add(section, _strip_markdown(" ".join(paragraph)))
            paragraph = []
        if heading:
            if len(heading.group(1)) >= 2:
                section = heading.group(2).strip()
        elif stripped:
            is_item = stripped.startswith(("- ", "* "))
            paragraph.append(stripped[2:].strip() if is_item else stripped)
    return doc


def word_count(text: str) -> int:
    return len(fold(text).split())


def chapters(knowledge_dir: Path) -> list[Document]:
    return [read_chapter(p) for p in sorted(knowledge_dir.glob("*.md")) if p.name.lower() != "readme.md"]


def build_corpus(documents: list[Document], out: Path) -> list[Passage]:
    """Write every document's passages to `out` (`training.corpus` and `training.scrape` both rebuild it)."""
    all_passages = [p for doc in documents for p in passages(doc)]
    ids = [p.id for p in all_passages]
    clash = {i for i in ids if ids.count(i) > 1}
    if clash:
        raise ValueError(f"two documents produce the same passage ids: {sorted(clash)[:5]}")
    write_corpus(out, all_passages)
    return all_passages
