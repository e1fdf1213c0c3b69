"""Text normalisation shared by the gate, the retriever, the FAQ matcher and the dataset checks."""

from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")
_WORD = re.compile(r"\w+")
# đ/Đ are letters of their own, not d plus a combining mark, so NFD leaves them alone.
_SPECIAL = str.maketrans({"đ": "d", "Đ": "D", "ø": "o", "Ø": "O", "ß": "ss", "–": "-", "—": "-"})


def strip_accents(text: str) -> str:
    """Remove diacritics, keeping case: "Nguyễn Ái Quốc" -> "Nguyen Ai Quoc"."""
    decomposed = unicodedata.normalize("NFD", text.translate(_SPECIAL))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Lower-case, accent-free, whitespace-collapsed form used for every comparison."""
    return _WS.sub(" ", strip_accents(text).lower()).strip()


def fold_words(text: str) -> str:
    """`fold` without punctuation: the form used to spot duplicate questions."""
    return _WS.sub(" ", _PUNCT.sub(" ", fold(text))).strip()


def words(text: str) -> list[str]:
    """Folded word tokens."""
    return _WORD.findall(fold(text))


def clean_whitespace(text: str) -> str:
    """Collapse runs of whitespace (newlines included) into single spaces."""
    return _WS.sub(" ", text).strip()
