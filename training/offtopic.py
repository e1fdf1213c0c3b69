"""Collect general-domain questions for the gate's "not related" class.

    python -m training.offtopic build [--webquestions ../shared/data/webquestions]

Sources (see data/offtopic/SOURCES.md): WebQuestions (CC BY 4.0) and the chitchat-dataset package (MIT).
Questions about Ho Chi Minh himself are filtered out; the hand-written hard negatives and positives live
beside the output in `data/offtopic/`.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path

from app.artifacts import atomic_write_text
from app.text import fold, fold_words
from training.gate_data import GENERAL_CSV

log = logging.getLogger(__name__)
DEFAULT_WEBQUESTIONS = Path(__file__).resolve().parents[2] / "shared/data/webquestions"
# The person, by any of his names; "Ho Chi Minh City" and the trail are places, not him.
ABOUT_HIM = re.compile(
    r"\b(ho chi minh(?! city| trail)|uncle ho|bac ho|nguyen ai quoc|nguyen tat thanh|nguyen sinh cung)\b"
)


def is_about_him(question: str) -> bool:
    return bool(ABOUT_HIM.search(fold(question)))


def webquestions(folder: Path) -> list[str]:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no WebQuestions JSON files in {folder}")
    return [row["qText"].strip() for path in files for row in json.loads(path.read_text(encoding="utf-8"))]


# At the kiosk "he" means Ho Chi Minh ("his wife?"); a chitchat question about an unnamed "he" is ambiguous
# there, so it is not used as an off-topic example.
_UNNAMED_HE = re.compile(r"\b(he|his|him|himself)\b", re.I)


def chitchat(min_words: int = 3, max_words: int = 20) -> list[str]:
    """Questions that people asked each other in the chitchat-dataset conversations."""
    spec = importlib.util.find_spec("chitchat_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the chitchat-dataset package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "dataset.json"
    conversations = json.loads(path.read_text(encoding="utf-8"))
    questions = []
    for conversation in conversations.values():
        for message in conversation["messages"]:
            for utterance in message:
                text = " ".join(utterance["text"].split())
                if text.endswith("?") and min_words <= len(text.split()) <= max_words and not _UNNAMED_HE.search(text):
                    questions.append(text)
    return questions


def collect(sources: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Deduplicated (question, source) rows, without any question about him."""
    seen: set[str] = set()
    rows = []
    for source, questions in sources.items():
        for q in questions:
            key = fold_words(q)
            if key and key not in seen and not is_about_him(q):
                seen.add(key)
                rows.append((q, source))
    return rows


def write_rows(path: Path, header: list[str], rows: list[tuple[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build"])
    parser.add_argument("--webquestions", type=Path, default=DEFAULT_WEBQUESTIONS)
    parser.add_argument("--out", type=Path, default=GENERAL_CSV)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rows = collect({"webquestions": webquestions(args.webquestions), "chitchat": chitchat()})
    write_rows(args.out, ["question", "source"], rows)
    for source, n in Counter(s for _, s in rows).items():
        log.info("%s: %d questions", source, n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
