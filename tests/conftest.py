"""Shared fixtures: real small artefacts (gate, FAQ, corpus) and a fake generator; no network, no GPU."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.generation.base import GenerationRequest, GenerationResult
from app.generation.stopping import TextStream, interrupted
from app.prompt import clean_answer

ROOT = Path(__file__).resolve().parent.parent


class FakeGenerator:
    """Streams a canned answer word by word, each with the space before it as a tokenizer's tokens carry it;
    honours cancellation, deadlines and max_new_tokens; counts the prompt's words as its tokens."""

    name = "fake"

    def __init__(
        self,
        text: str = "Ho Chi Minh was a teacher and a writer.",
        delay_s: float = 0.0,
        error: Exception | None = None,
    ) -> None:
        self.text = text
        self.delay_s = delay_s
        self.error = error
        self.calls = 0
        self.batches: list[int] = []
        self.cancelled = 0
        self.lock = threading.Lock()
        self.last_prompt = ""
        self.last_copy_from: tuple[str, ...] = ()
        self.last_max_new_tokens = 0

    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        with self.lock:
            self.last_prompt = requests[-1].prompt
            self.last_copy_from = requests[-1].copy_from
            self.last_max_new_tokens = requests[-1].max_new_tokens
            self.calls += len(requests)
            self.batches.append(len(requests))
        if self.error is not None:
            raise self.error
        words = self.text.split(" ")
        results = []
        streams = [TextStream(r) for r in requests]
        raws = ["" for _ in requests]
        done = [False] * len(requests)
        for i, word in enumerate(words):
            if all(done):
                break
            time.sleep(self.delay_s)
            for j, (r, s) in enumerate(zip(requests, streams, strict=True)):
                if done[j]:
                    continue
                if interrupted(r) or i >= r.max_new_tokens:
                    done[j] = True
                    continue
                raws[j] += " " + word
                done[j] = s.update(raws[j])
        for j, (r, s) in enumerate(zip(requests, streams, strict=True)):
            if r.cancelled.is_set():
                self.cancelled += 1
            s.flush(raws[j])
            n = len(raws[j].split())
            finish = s.finish_reason(n, hit_eos=n == len(words))
            results.append(GenerationResult(clean_answer(raws[j]), n, finish, len(r.prompt.split())))
        return results

    def warmup(self) -> None:
        pass


@pytest.fixture(scope="session")
def fake_generator_class() -> type[FakeGenerator]:
    return FakeGenerator
