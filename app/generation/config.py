"""The local generator's configuration: one typed object, built from the service's settings or by training,
benchmarks and tests."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from app.settings import Settings

# The service's defaults: each knob has one default, wherever the generator is built.
_SERVED: dict[str, Any] = {name: field.default for name, field in Settings.model_fields.items()}


@dataclass(frozen=True)
class GeneratorConfig:
    """How the local generator loads its model and decodes. Fields named like a setting are that setting
    (`KIOSK_<NAME>`, documented in the README) with the service's default."""

    base_model: str = _SERVED["base_model"]
    """A hub id (`tiiuae/falcon-7b-instruct`), a local folder, or `packaged:smollm2`."""
    adapter_dir: Path | None = _SERVED["adapter_dir"]
    """The LoRA adapter folder, checked against its manifest; None: the base model alone."""
    quantize_4bit: bool = _SERVED["quantize_4bit"]
    """4-bit nf4 base weights on CUDA (checked after loading); ignored on the CPU."""
    cpu_int8: bool = _SERVED["cpu_int8"]
    """On the CPU, Llama family: int8 matmuls for decoding steps (prompts stay float32)."""
    base_cache_dir: Path = _SERVED["base_cache_dir"]
    """Where `packaged:smollm2` is converted once."""
    gpu_int4_kernel: bool = _SERVED["gpu_int4_kernel"]
    """On CUDA: the adapter folded into int4 weights for PyTorch's int4 matmul instead of nf4."""
    gpu_decoding_loop: bool = _SERVED["gpu_decoding_loop"]
    """On CUDA, Falcon: the decoding loop of app.generation.decoders.gpu instead of `generate`."""
    gpu_max_length: int = _SERVED["gpu_max_length"]
    """Prompt + answer tokens per row that the GPU loop's cache holds; a longer request goes to `generate`."""
    max_batch_size: int = _SERVED["max_batch_size"]
    """Requests generated together: the GPU loop's cache has this many rows."""
    copy_bias: float = _SERVED["copy_bias"]
    """Logit bonus for continuing a source sentence being copied (app.generation.copying; 0: off)."""
    draft_tokens: int = _SERVED["draft_tokens"]
    """Prompt-lookup decoding on the CPU for a lone request: tokens checked per pass (0: off)."""
    merge: bool = True
    """Fold the adapter into the base weights (no cost per token); False keeps it apart (comparisons)."""
    compile_decoding: bool = True
    """On CUDA without the GPU loop: `generate` with a static cache and compiled decoding."""

    @classmethod
    def from_settings(cls, settings: Settings) -> GeneratorConfig:
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls) if f.name in Settings.model_fields})
