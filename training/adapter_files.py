"""LoRA adapter files as shipped: float16 (the generator's adapter and the sentence encoder's alike)."""

from __future__ import annotations

from pathlib import Path

import torch


def to_half(path: Path) -> None:
    """Ship the adapter in float16: half the size, and far below the model's own precision loss."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    save_file(
        {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()},
        path,
        metadata={"format": "pt"},
    )
    path.chmod(0o644)
