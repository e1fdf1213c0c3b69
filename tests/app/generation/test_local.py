"""The local generator: its configuration, and which decoding loop gets a batch, with which hooks."""

from __future__ import annotations

import logging
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from app.generation.base import GenerationRequest
from app.generation.config import GeneratorConfig
from app.generation.decoders.cpu import CpuDecoder
from app.generation.local import LocalGenerator
from app.settings import Settings

SOURCE = "w10 w11 w12 w13 w14 w15"


class Loop:
    """A decoding loop of our own for the tests: the CPU loop's arithmetic, with chosen capabilities."""

    applies_processor = False
    drafts = False

    def __init__(self, model: Any, fits: bool) -> None:
        self.inner = CpuDecoder(model, int8=False)
        self._fits = fits
        self.calls: list[dict[str, Any]] = []

    def fits(self, width: int, max_new_tokens: int, rows: int) -> bool:
        return self._fits

    def generate(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.calls.append(kwargs)
        return self.inner.generate(*args, **kwargs)

    def warmup(self, pad_token_id: int) -> None:
        pass


def _request() -> GenerationRequest:
    return GenerationRequest("w3 w4 w5 w6", 6, time.monotonic() + 60, copy_from=(SOURCE,))


def test_the_config_has_the_services_defaults_and_reads_its_settings():
    served = Settings(_env_file=None)  # type: ignore[call-arg]
    shared = [f.name for f in fields(GeneratorConfig) if f.name in Settings.model_fields]
    assert len(shared) == 11
    assert all(getattr(GeneratorConfig(), name) == getattr(served, name) for name in shared)
    settings = Settings(
        _env_file=None,
        max_batch_size=3,
        copy_bias=1.5,
        adapter_dir=None,  # type: ignore[call-arg]
        base_cache_dir=Path("elsewhere"),
    )
    config = GeneratorConfig.from_settings(settings)
    assert (config.max_batch_size, config.copy_bias, config.adapter_dir) == (3, 1.5, None)
    assert config.base_cache_dir == Path("elsewhere") and config.merge and config.compile_decoding


def test_a_batch_the_loop_cannot_fit_goes_to_transformers_generate(llama, tokenizer):
    loop = Loop(llama, fits=False)
    answer = LocalGenerator(llama, tokenizer, loop).generate_batch([_request()])[0]
    assert loop.calls == []
    assert answer == LocalGenerator(llama, tokenizer).generate_batch([_request()])[0]


def test_a_loop_without_a_logits_processor_gets_no_copy_bias_and_start_up_says_so(llama, tokenizer, caplog):
    loop = Loop(llama, fits=True)
    with caplog.at_level(logging.WARNING, logger="app.generation.local"):
        generator = LocalGenerator(llama, tokenizer, loop, copy_bias=3.0, draft_tokens=4)
    assert "KIOSK_COPY_BIAS=3.0 is NOT applied" in caplog.text
    generator.generate_batch([_request()])
    assert loop.calls and "process" not in loop.calls[0] and "draft" not in loop.calls[0]


def test_a_loop_that_takes_hooks_gets_the_copy_bias_and_drafts(llama, tokenizer, caplog):
    loop = Loop(llama, fits=True)
    loop.applies_processor = loop.drafts = True
    with caplog.at_level(logging.WARNING, logger="app.generation.local"):
        generator = LocalGenerator(llama, tokenizer, loop, copy_bias=3.0, draft_tokens=4)
    assert "NOT applied" not in caplog.text
    generator.generate_batch([_request()])
    assert callable(loop.calls[0]["process"]) and callable(loop.calls[0]["draft"])
