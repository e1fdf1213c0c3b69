"""Which language a visitor typed: Vietnamese (with or without diacritics), French, or English."""

from __future__ import annotations

import re
from typing import Literal

from app.text import fold

Language = Literal["en", "vi", "fr"]
LANGUAGES: tuple[Language, ...] = ("en", "vi", "fr")

# Letters only Vietnamese writes (ă, ơ, ư, đ and the tone marks on vowels that French never carries).
_VIETNAMESE_LETTERS = re.compile(r"[ăắằẳẵặơớờởỡợưứừửữựđảẩẫạậẹẻẽềểễệỉĩịọỏổỗộụủũỳỵỷỹ]", re.I)
# Common Vietnamese words typed without diacritics; each is rare in English and French questions.
_VIETNAMESE_WORDS = frozenset(
    "la gi nao bao nhieu khong ko chua cua nguoi ong ba bac co duoc dau nam nay sao nhu vay voi cho tai vi "
    "ai gia dinh huong sinh mat chet vo anh em di o ve tu nhung cac mot hai lam viec gio hoi luc khi "
    "chu tich lang nha tho tuoi nuoc j bn dc ntn".split()
)
_FRENCH_WORDS = frozenset(
    "le la les un une des du de est il elle sa son ses qui que quoi quel quelle quels quelles ou où pourquoi "
    "comment combien quand était etait a-t-il est-ce c'est qu'il qu'est-ce avec pour dans sur au aux né nee ne "
    "mort femme enfants père pere mère mere oncle vrai nom ans été ete avait fait".split()
)
_TOKEN = re.compile(r"[\w'’-]+")
_NAME = frozenset(("ho", "chi", "minh"))


def has_vietnamese_letters(text: str) -> bool:
    return bool(_VIETNAMESE_LETTERS.search(text))


def detect(text: str) -> Language:
    """The question's language: Vietnamese letters decide at once; otherwise the share of telltale words."""
    if has_vietnamese_letters(text):
        return "vi"
    # his name is written alike in every language: it says nothing of the language
    words = [w.lower() for w in _TOKEN.findall(text) if fold(w) not in _NAME]
    if not words:
        return "en"
    vi = sum(fold(w) in _VIETNAMESE_WORDS for w in words)
    fr = sum(w in _FRENCH_WORDS for w in words)
    if any(c in text.lower() for c in "àâçéèêëîïôûùœ") and fr >= vi:
        return "fr"
    if vi > fr and (vi == len(words) or (vi >= 2 and vi / len(words) >= 0.4)):
        return "vi"
    if fr > vi and (fr == len(words) or (fr >= 2 and fr / len(words) >= 0.3)):
        return "fr"
    return "en"
