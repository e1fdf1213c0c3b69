"""When a request stops, and why: the one stopping rule of every generator and decoding loop.

A request ends at the end-of-answer token, at a stop string (a backstop: the model was trained to emit the
token), at its own token budget, when its client goes away or at its deadline. Generators ask
`interrupted` before and while they work, `RowStopper` decides per row of a batch (transformers'
`generate` and the decoding loops call it after every token, through `ended`), and `finish_reason` names
the cause in the result. Streamed text goes through `TextStream`, so that no stop string is ever shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.generation.base import Finish, GenerationRequest
from app.prompt import STOP_STRINGS, cut_at_stop

if TYPE_CHECKING:
    import torch


def interrupted(request: GenerationRequest, now: float | None = None) -> Finish | None:
    """Why `request` must stop at once: "cancelled" (the client went away), "deadline" (its time is up), or None."""
    if request.cancelled.is_set():
        return "cancelled"
    if (time.monotonic() if now is None else now) >= request.deadline:
        return "deadline"
    return None


def finish_reason(request: GenerationRequest, n_tokens: int, stopped: bool) -> Finish:
    """Why a request's generation ended; `stopped`: its end token or a stop string appeared."""
    if request.cancelled.is_set():
        return "cancelled"  # first: whatever was made, nobody reads it
    if stopped:
        return "stop"
    return interrupted(request) or ("length" if n_tokens >= request.max_new_tokens else "stop")


def ended(ids: torch.Tensor, stop: Callable[[torch.Tensor], torch.Tensor], eos_token_id: int) -> torch.Tensor:
    """Rows that end with their newest token (the last column of `ids`): the end-of-answer token, or `stop`
    (a `RowStopper`) says so. The decoding loops ask this after every token."""
    return (ids[:, -1] == eos_token_id) | stop(ids)


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
        return finish_reason(self.request, n_tokens, self.stopped or hit_eos)


def marker_token_ids(tokenizer: Any) -> frozenset[int]:
    """Ids whose text could begin a stop string (all start with "<" or a newline).

    Special tokens (end of answer, padding) are left out: rows are decoded without them, so they add no text.
    """
    ids = range(len(tokenizer))
    special = set(getattr(tokenizer, "all_special_ids", ()))
    backend = getattr(tokenizer, "backend_tokenizer", None)  # fast tokenizers decode in Rust, ~10x sooner
    texts = (
        backend.decode_batch([[i] for i in ids], skip_special_tokens=False)
        if backend is not None
        else tokenizer.batch_decode([[i] for i in ids])
    )
    return frozenset(
        i for i, text in zip(ids, texts, strict=True) if ("<" in text or "\n" in text) and i not in special
    )


class RowStopper:
    """The rule per row of a batch, as a transformers StoppingCriteria: stop strings, cancellation, deadline,
    per-request budget. Called with all ids so far, it returns one bool per row (True: the row is done).

    Decoding a row's text every step costs milliseconds at batch 32, so a row is decoded only when it
    streams to a visitor, or while a stop string could be under way: from a token that could begin one
    until as many tokens later as the longest stop string has characters (every token adds at least one).
    """

    def __init__(
        self, requests: list[GenerationRequest], tokenizer: Any, prompt_width: int, markers: frozenset[int]
    ) -> None:
        self.requests = requests
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.markers = markers
        self.streams = [TextStream(r) for r in requests]
        self._window = max(len(s) for s in STOP_STRINGS)
        self._suspect_until = [-1] * len(requests)  # the last step at which the row must still be decoded
        self._done = [False] * len(requests)  # a finished row is only padded from then on: no more decoding

    def __call__(self, input_ids: torch.Tensor, scores: Any = None, **kwargs: Any) -> torch.Tensor:
        import torch

        now = time.monotonic()
        n_new = input_ids.shape[1] - self.prompt_width
        last = input_ids[:, -1].tolist()
        for i, (request, stream) in enumerate(zip(self.requests, self.streams, strict=True)):
            if self._done[i]:
                continue
            if last[i] in self.markers:
                self._suspect_until[i] = n_new + self._window
            stopped = False
            if request.on_text is not None or n_new <= self._suspect_until[i]:
                raw = self.tokenizer.decode(input_ids[i, self.prompt_width :], skip_special_tokens=True)
                stopped = stream.update(raw)
            self._done[i] = stopped or interrupted(request, now) is not None or n_new >= request.max_new_tokens
        return torch.tensor(self._done, dtype=torch.bool, device=input_ids.device)
