"""Trust rules on a question and its answer: markup removed, loaded questions spotted, verdicts and facts checked.

A museum must never confirm what its sources do not say (OWASP LLM09): a "Yes"/"No" opens an answer only when a
verified answer written for that very claim gives it; value judgements and insinuations get a neutral, sourced
reply; every number and proper name a generated answer states must stand in its sources or in the question.
"""

from __future__ import annotations

import re
from typing import Literal

from app.text import fold, sent_tokenize

LoadedKind = Literal["judgement", "insinuation"]

# Turn and role markers of this kiosk's prompt format and of common chat templates, typed into a question to
# steer retrieval or the model: they are removed before anything reads the question.
_MARKUP = re.compile(
    r"<\s*/?\s*(human|assistant|sources?|system|user|s|im_start|im_end|\|[^>]{0,20}\|)\s*>\s*:?"
    r"|\[\s*/?\s*(inst|sources?|system)\s*\]|^\s*#{2,}\s*\w+\s*:?|\b(system|assistant|sources?)\s*:\s*",
    re.I | re.M,
)
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions?|rules?|above|previous)\b|\bpretend\b|\bact as\b|"
    r"\byou are now\b|\brole-?play\b|\bsystem prompt\b|\bjailbreak\b|\bdeveloper mode\b|\brepeat after me\b",
    re.I,
)
# Value judgements and insinuations, folded (lower case, no accents), in English, Vietnamese and French.
_JUDGEMENT = re.compile(
    r"\b(good|bad|evil|great|greatest|best|worst|terrible|cruel|kind|nice) (man|person|leader|guy|human|people)\b|"
    r"\b(hero|villain|monster|tyrant|dictator|murderer|butcher|criminal|war criminal|terrorist|saint|genius|"
    r"mass murderer|psychopath)\b|\b(nguoi|lanh tu) (tot|xau|ac)\b|\b(doc tai|sat nhan|toi pham|anh hung|ac nhan)\b|"
    r"\b(bon|mauvais|mechant|gentil) (homme|dirigeant|personne|type)\b|\b(heros|dictateur|tyran|criminel|"
    r"meurtrier|assassin|monstre)\b"
)
_INSINUATION = re.compile(
    r"\b(gay|homosexual|bisexual|lover|lovers|mistress|affair|affairs|secret (wife|wives|child|children|son|"
    r"daughter|family|lover)|illegitimate|spy|agent of|double agent|faked? (his )?death|still alive|really dead|"
    r"body (is )?fake|wax (figure|statue)|poisoned|assassinated|womani[sz]er|drug|opium|alcoholic)\b|"
    r"\b(dong tinh|dong tinh luyen ai|gian diep|con rieng|vo bi mat|nhan tinh|bo nhi|chua chet|con song)\b|"
    r"\b(homosexuel|gay|espion|maitresse|amant|enfant cache|enfants caches|fils cache|toujours vivant)\b"
)
_YES_NO_QUESTION = re.compile(
    r"^\W*(is|was|were|are|did|does|do|has|had|have|can|could|would|will|should)\b|\b(co|phai) khong\b|"
    r"\b(khong|ko|k|chua) *\W*$|\b(est-ce qu|est-il|etait-elle|est-elle|y a-t-il|a-t-elle|etait-il|a-t-il|avait-il)\b",
)
# "No", "Không", "Có", "Non" also open ordinary sentences ("No children of his are acknowledged", "Không có gì quý
# hơn độc lập, tự do"): they are a verdict only when punctuation or the end follows, else removing them would turn the
# sentence into its opposite. "Yes", "Oui", "Vâng" are a verdict wherever they open the answer.
_VERDICT = re.compile(
    r"^\W*(?:(?:yes|oui|vâng)\b|(?:no|non|có|không|đúng|sai)(?=\s*(?:[.,!:;–—]|$)))[\s,.!:;–—-]*", re.I
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


def strip_markup(question: str) -> str:
    """The question without prompt markup: what a visitor means, never a turn or a source the model obeys."""
    cleaned = _MARKUP.sub(" ", question)
    return question if cleaned == question else " ".join(cleaned.split())


def injected(question: str) -> bool:
    """Whether the question carries markup or instructions aimed at the model rather than a question about him."""
    return bool(_MARKUP.search(question) or _INSTRUCTION.search(question))


def loaded(question: str) -> LoadedKind | None:
    """A value judgement ("was he a good person?") or an insinuation ("was he gay?"), else None."""
    folded = fold(question)
    if _INSINUATION.search(folded):
        return "insinuation"
    if _JUDGEMENT.search(folded):
        return "judgement"
    return None


def asks_yes_or_no(question: str) -> bool:
    return bool(_YES_NO_QUESTION.search(fold(question)))


def verdict_allowed(question: str, verified: bool) -> bool:
    """A verdict may open the answer only when a verified answer answers this yes/no question itself."""
    return verified and asks_yes_or_no(question)


def opens_with_verdict(answer: str) -> bool:
    """Whether the answer opens with a "Yes."/"No." (or a Vietnamese or French one)."""
    return bool(_VERDICT.match(answer))


def without_verdict(answer: str) -> str:
    """The answer without an opening "Yes."/"No." (and their Vietnamese and French forms), first letter raised."""
    rest = _VERDICT.sub("", answer, count=1).strip()
    if not rest or rest == answer.strip():
        return answer
    return rest[0].upper() + rest[1:]


def facts(answer: str) -> tuple[list[str], list[str]]:
    """The numbers, and the capitalised words that do not open a sentence, of an answer."""
    numbers = [n.replace(",", "") for n in _NUMBER.findall(answer)]
    names: list[str] = []
    for sentence in sent_tokenize(answer):
        for i, word in enumerate(_WORD.findall(sentence)):
            if i > 0 and word[0].isupper() and word != "I":
                names.append(re.sub(r"['’]s$", "", word).strip("-'’"))
    return numbers, names


def missing_facts(answer: str, evidence: str) -> list[str]:
    """Facts of `answer` that `evidence` does not contain (case- and accent-folded).

    The dataset validator holds every verified answer to this rule against its cited passages; the service holds
    every generated answer to it against its sources and the question.
    """
    haystack = fold(evidence)
    digits = haystack.replace(",", "")
    numbers, names = facts(answer)
    missing = [n for n in numbers if not re.search(rf"(?<![\d]){re.escape(n)}(?![\d])", digits)]
    missing += [w for w in names if not re.search(rf"(?<!\w){re.escape(fold(w))}(?!\w)", haystack)]
    return missing
