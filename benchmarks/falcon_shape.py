"""A Falcon-7B-shaped model with random weights (speed and memory do not depend on weight values).

Saved with `save_pretrained` and then loaded exactly as the real weights would be. The tokenizer is
SmolLM2's (its 49,152 ids fit Falcon's 65,024-row embedding); it only turns text into ids here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

FALCON_7B = dict(
    vocab_size=65024,
    hidden_size=4544,
    num_hidden_layers=32,
    num_attention_heads=71,
    multi_query=True,
    parallel_attn=True,
    new_decoder_architecture=False,
    bias=False,
    alibi=False,
    layer_norm_epsilon=1e-5,
    bos_token_id=11,
    eos_token_id=11,
)
TINY = {**FALCON_7B, "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4}
FALCON_TARGETS = ("query_key_value", "dense_h_to_4h", "dense_4h_to_h")


def make_model_dir(out: Path, tokenizer_dir: Path, shape: dict | None = None, seed: int = 0) -> Path:
    """Write a random Falcon of `shape` (default: 7B) and a tokenizer to `out`, once."""
    from transformers import FalconConfig, FalconForCausalLM

    if (out / "config.json").exists():
        return out
    torch.manual_seed(seed)
    config = FalconConfig(**(shape or FALCON_7B))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = FalconForCausalLM(config).to(torch.bfloat16 if device == "cuda" else torch.float32)
    model.save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tokenizer_dir / name).exists():
            shutil.copy(tokenizer_dir / name, out / name)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def random_lora(model: torch.nn.Module, r: int = 64, alpha: int = 16, dropout: float = 0.0) -> torch.nn.Module:
    """The report's adapter shape (r=64 on its three modules) with non-zero random weights, unmerged."""
    from peft import get_peft_model

    from app.modeling.lora import lora_config

    config = lora_config(r, alpha, dropout, FALCON_TARGETS)
    config.init_lora_weights = False  # B is random too, so the adapter really changes the outputs
    return get_peft_model(model, config)


def save_adapter(peft_model: torch.nn.Module, out: Path) -> Path:
    """Save like training does: the weights and a manifest that `verify_adapter` checks."""
    from app.artifacts import atomic_write_json, folder_hashes
    from app.modeling.lora import ADAPTER_MANIFEST

    shutil.rmtree(out, ignore_errors=True)
    peft_model.save_pretrained(out)
    manifest = {"files": folder_hashes(out), "config": {"lora_targets": list(FALCON_TARGETS)}}
    atomic_write_json(out / ADAPTER_MANIFEST, manifest)
    return out


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write a Falcon-7B-shaped random model (once).")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/falcon-bench"))
    args = parser.parse_args()
    print(make_model_dir(args.workdir / "model", args.tokenizer))


if __name__ == "__main__":
    main()
