"""Build `data/corpus.jsonl` from the museum's chapters and any cached Wikipedia pages.

    python -m training.corpus build [--knowledge-dir data/knowledge] [--raw-dir data/raw] [--out data/corpus.jsonl]

The museum's Markdown chapters and scraped pages go through the same passage splitter, so both are one
kind of source. Scraped pages come from the cache that `python -m training.scrape` fills.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training.documents import CORPUS, KNOWLEDGE_DIR, build_corpus, chapters
from training.wikipage import RAW_DIR, cached_pages

log = logging.getLogger(__name__)


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
    built = build_corpus(docs, args.out)
    if not args.quiet:
        for p in built:
            print(f"{p.id}\t{p.section}\t{len(p.text.split())} words")
    words = sum(len(p.text.split()) for p in built)
    log.info("wrote %d passages (%d words) from %d documents to %s", len(built), words, len(docs), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
