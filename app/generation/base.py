"""The generator interface: a request, its result, and what every generator (local, OpenAI, test fakes) provides."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

Finish = Literal["stop", "length", "deadline", "cancelled"]


@dataclass
class GenerationRequest:
    prompt: str
    max_new_tokens: int
    deadline: float  # time.monotonic() after which generation stops
    on_text: Callable[[str], None] | None = None  # receives text deltas, from the worker thread
    cancelled: threading.Event = field(default_factory=threading.Event)
    copy_from: tuple[str, ...] = ()  # source sentences whose faithful copying is favoured (app.generation.copying)


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
