"""LoRA adapters: their configuration for training, and the manifest that a trained one is checked against."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.artifacts import ArtifactError, read_manifest, verify_file

ADAPTER_MANIFEST = "adapter_manifest.json"


def lora_config(r: int, alpha: int, dropout: float, targets: Sequence[str], layers: Sequence[int] | None = None) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets),
        layers_to_transform=list(layers) if layers is not None else None,
        bias="none",
        task_type="CAUSAL_LM",
    )


def verify_adapter(path: Path) -> dict[str, Any]:
    """An adapter folder must match its manifest file by file (a truncated or swapped file is refused)."""
    manifest = read_manifest(path / ADAPTER_MANIFEST)
    files = manifest.get("files")
    if not isinstance(files, dict) or "adapter_model.safetensors" not in files:
        raise ArtifactError(f"{path / ADAPTER_MANIFEST} lists no adapter weights")
    for name, digest in files.items():
        verify_file(path / name, digest)
    return manifest
