"""The one prompt format (the student report's `<human>:` / `<assistant>:` turns, with sources) and answer clean-up.

Training and serving both build prompts here, so the format cannot drift between them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.text import sent_tokenize

HUMAN = "<human>:"
ASSISTANT = "<assistant>:"
SOURCES = "<sources>:"
# Generation stops at the end-of-answer token the model was trained to emit; these strings are a backstop.
STOP_STRINGS = (HUMAN, ASSISTANT, SOURCES, "<human", "<assistant", "\n\n")
_SENTENCE_END = re.compile(r"[.!?…](?:[\"'”’)\]]*)$")


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str


def build_prompt(question: str, context: str = "", history: tuple[Turn, ...] | list[Turn] = ()) -> str:
    """Sources first, then earlier turns, then the question; the answer follows `<assistant>: `."""
    lines = [f"{SOURCES} {context.strip()}"] if context.strip() else []
    lines += [turn_lines(turn) for turn in history]
    lines += [f"{HUMAN} {question.strip()}", ASSISTANT]
    return "\n".join(lines)


def turn_lines(turn: Turn) -> str:
    """An earlier turn as the prompt shows it."""
    return f"{HUMAN} {turn.question.strip()}\n{ASSISTANT} {turn.answer.strip()}"


def estimate_tokens(text: str) -> int:
    """Tokens without a tokenizer: about 4 per 3 English words, and at least one per 4 characters (long
    unbroken strings, other scripts)."""
    return max(math.ceil(len(text.split()) * 4 / 3), math.ceil(len(text) / 4))


def fit_history(
    history: Sequence[Turn], max_tokens: int, count: Callable[[str], int] = estimate_tokens
) -> tuple[Turn, ...]:
    """The latest turns whose prompt lines fit in `max_tokens`, oldest dropped first; a turn is whole or left out.

    The prompt is the question, a bounded context and this history: capping it bounds the prompt, so one
    client's long conversation cannot make everyone's batch slow.
    """
    kept: list[Turn] = []
    left = max_tokens
    for turn in reversed(history):
        left -= count(turn_lines(turn))
        if left < 0:
            break
        kept.append(turn)
    return tuple(reversed(kept))


def cut_at_stop(text: str) -> tuple[str, bool]:
    """Text before the first stop string, and whether one was found."""
    positions = [i for s in STOP_STRINGS if (i := text.find(s)) >= 0]
    return (text[: min(positions)], True) if positions else (text, False)


def clean_answer(text: str) -> str:
    """Stop at any turn marker and end on a complete sentence; a single unfinished sentence is kept as is."""
    text, _ = cut_at_stop(text)
    text = " ".join(text.split())
    if not text or _SENTENCE_END.search(text):
        return text
    sentences = sent_tokenize(text)
    complete = [s for s in sentences if _SENTENCE_END.search(s)]
    if complete and len(complete) < len(sentences):
        return " ".join(complete)
    return text


def ends_cleanly(text: str) -> bool:
    """An answer a visitor can read: no turn marker inside, and a final sentence that is finished."""
    return bool(text) and cut_at_stop(text)[0] == text and bool(_SENTENCE_END.search(text.strip()))
