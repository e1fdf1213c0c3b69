"""Generators behind one interface, and the per-row stopping rule that streams, cancels and enforces deadlines."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from app.prompt import STOP_STRINGS, cut_at_stop

Finish = Literal["stop", "length", "deadline", "cancelled"]


@dataclass
class GenerationRequest:
    prompt: str
    max_new_tokens: int
    deadline: float  # time.monotonic() after which generation stops
    on_text: Callable[[str], None] | None = None  # receives text deltas, from the worker thread
    cancelled: threading.Event = field(default_factory=threading.Event)
    copy_from: tuple[str, ...] = ()  # source sentences whose faithful copying is favoured (app.copying)


@dataclass
class GenerationResult:
    text: str
    tokens: int
    finish: Finish
    prompt_tokens: int = 0  # as the model counted them; 0 where the generator does not know


class Generator(Protocol):
    """Turns prompts into answers; `generate_batch` blocks and runs on the worker thread."""

    name: str

    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]: ...

    def warmup(self) -> None: ...


class TextStream:
    """Feeds a request's growing raw text and emits only the part that is safe to show.

    Text after a stop string is never shown; text that could still become a stop string is held back.
    The space that a tokenizer puts before the first word is not shown either: a client would print it.
    """

    def __init__(self, request: GenerationRequest) -> None:
        self.request = request
        self.sent = 0
        self.stopped = False
        self._hold = max(len(s) for s in STOP_STRINGS)

    def update(self, raw: str) -> bool:
        """Emit new safe text; True once a stop string has appeared."""
        visible = self._visible(raw)
        safe = visible if self.stopped else visible[: max(self.sent, len(visible) - self._hold)]
        if self.request.on_text and len(safe) > self.sent:
            self.request.on_text(safe[self.sent :])
        self.sent = max(self.sent, len(safe))
        return self.stopped

    def flush(self, raw: str) -> None:
        """Generation is over: nothing can turn into a stop string any more, so send what was held back."""
        visible = self._visible(raw)
        if self.request.on_text and len(visible) > self.sent:
            self.request.on_text(visible[self.sent :])
        self.sent = max(self.sent, len(visible))

    def _visible(self, raw: str) -> str:
        visible, self.stopped = cut_at_stop(raw)
        return visible.lstrip()

    def finish_reason(self, n_tokens: int, hit_eos: bool) -> Finish:
        if self.request.cancelled.is_set():
            return "cancelled"
        if self.stopped or hit_eos:
            return "stop"
        if time.monotonic() >= self.request.deadline:
            return "deadline"
        return "length" if n_tokens >= self.request.max_new_tokens else "stop"


def prompt_positions_and_mask(attention_mask: Any) -> tuple[Any, Any]:
    """For left-padded prompts: each token's position (padding not counted) and which prompt tokens each
    one attends to, [B, T, T] (causal, real tokens only; a padding position attends to itself, so that no
    row of the mask is empty, which would give NaN)."""
    import torch

    width = attention_mask.shape[1]
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    causal = torch.ones(width, width, dtype=torch.bool, device=attention_mask.device).tril()
    eye = torch.eye(width, dtype=torch.bool, device=attention_mask.device)
    return positions, (causal & attention_mask.bool()[:, None, :]) | eye
