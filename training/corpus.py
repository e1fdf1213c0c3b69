"""Build `data/corpus.jsonl` from the museum's chapters and any cached Wikipedia pages.

    python -m training.corpus build [--knowledge-dir data/knowledge] [--raw-dir data/raw] [--out data/corpus.jsonl]

The museum's Markdown chapters and scraped pages go through the same passage splitter, so both are one
kind of source. Scraped pages come from the cache that `python -m training.scrape` fills.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from app.kiosk.corpus import Passage, write_corpus
from training.documents import Document, passages, read_chapter
from training.wikipage import parse_article

log = logging.getLogger(__name__)
DATA = Path("data")
KNOWLEDGE_DIR = DATA / "knowledge"
RAW_DIR = DATA / "raw"
CORPUS = DATA / "corpus.jsonl"


def chapters(knowledge_dir: Path) -> list[Document]:
    return [read_chapter(p) for p in sorted(knowledge_dir.glob("*.md")) if p.name.lower() != "readme.md"]


def cached_pages(raw_dir: Path) -> list[Document]:
    """Parse every page the scraper cached (`<slug>.html` beside `<slug>.json` holding title and url)."""
    docs = []
    for meta_path in sorted(raw_dir.glob("*.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        html = meta_path.with_suffix(".html").read_text(encoding="utf-8")
        docs.append(parse_article(html, meta["title"], meta["url"]))
    return docs


def build(documents: list[Document], out: Path) -> list[Passage]:
    all_passages = [p for doc in documents for p in passages(doc)]
    ids = [p.id for p in all_passages]
    clash = {i for i in ids if ids.count(i) > 1}
    if clash:
        raise ValueError(f"two documents produce the same passage ids: {sorted(clash)[:5]}")
    write_corpus(out, all_passages)
    return all_passages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build"])
    parser.add_argument("--knowledge-dir", type=Path, default=KNOWLEDGE_DIR)
    parser.add_argument("--raw-dir", type=Path, default=RAW_DIR)
    parser.add_argument("--out", type=Path, default=CORPUS)
    parser.add_argument("--quiet", action="store_true", help="do not list the passage ids")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    docs = chapters(args.knowledge_dir) + (cached_pages(args.raw_dir) if args.raw_dir.is_dir() else [])
    built = build(docs, args.out)
    if not args.quiet:
        for p in built:
            print(f"{p.id}\t{p.section}\t{len(p.text.split())} words")
    words = sum(len(p.text.split()) for p in built)
    log.info("wrote %d passages (%d words) from %d documents to %s", len(built), words, len(docs), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
