"""Training benchmark on a GPU: the student report's QLoRA recipe against the project's, same samples.

    python -m benchmarks.gpu_training --model-dir /tmp/falcon-bench/model --steps 30

Both train the same adapter (r=64 on the report's three modules, first 16 of 32 layers without adapter,
effective batch 16) on the QA dataset's real prompts (retrieved passages included) for the same number of
optimiser steps, then measure the evaluation loss. The report's recipe pads every example to the maximum
length, recomputes activations (gradient checkpointing), sends gradients down through the frozen layers
and uses paged AdamW; the project's preset groups by length, pads per batch, keeps activations, stops the
backward pass at the first adapter and forms logits only for answer tokens (a third run also uses micro-
batches of 16 and fused AdamW).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import save_results
from training.config import load_config
from training.finetune import build_trainer, prepare_model
from training.finetune_config import FinetuneConfig

RECIPES: dict[str, dict[str, Any]] = {
    "report": dict(
        batch_size=4,
        grad_accum=4,
        pad_to_max_length=True,
        gradient_checkpointing=True,
        input_require_grads=True,
        answer_only_logits=False,
        group_by_length=False,
        optim="paged_adamw_32bit",
    ),
    "project": {},  # training/configs/falcon-7b-qlora.yaml as it is: the report's batches and optimiser
    "project_fast": dict(batch_size=16, grad_accum=1, optim="adamw_torch_fused"),  # = falcon-7b-qlora-fast.yaml
}


def run(config: FinetuneConfig) -> dict[str, Any]:
    torch.manual_seed(config.seed)
    model, tokenizer = prepare_model(config)
    trainer = build_trainer(config, model, tokenizer)
    lengths = trainer.train_dataset.lengths()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    samples = config.max_steps * config.batch_size * config.grad_accum
    tokens = samples * sum(lengths) / len(lengths)  # real (unpadded) tokens
    result = {
        "seconds": round(seconds, 1),
        "s_per_step": round(seconds / config.max_steps, 3),
        "real_tokens_per_s": round(tokens / seconds, 1),
        "epoch_minutes": round(len(lengths) / (samples / seconds) / 60, 2),
        "eval_loss": round(trainer.evaluate()["eval_loss"], 4),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 1024**3, 2) if torch.cuda.is_available() else None,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    del trainer, model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=Path("training/configs/falcon-7b-qlora.yaml"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/falcon-train-bench"))
    parser.add_argument("--freeze-layers", type=float, help="override (a tiny model has fewer than 16 layers)")
    args = parser.parse_args(argv)
    base = load_config(
        FinetuneConfig,
        args.config,
        base_model=str(args.model_dir),
        max_steps=args.steps,
        freeze_layers=args.freeze_layers,
    )
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    results: dict[str, Any] = {"card": card, "date": datetime.date.today().isoformat(), "steps": args.steps}
    for name, overrides in RECIPES.items():
        config = dataclasses.replace(
            base,
            eval_steps=10 * args.steps,
            save_total_limit=1,
            output_dir=args.workdir / name,
            out_dir=args.workdir / f"{name}-adapter",
            **overrides,
        )
        results[name] = run(config)
        print(name, json.dumps(results[name]), flush=True)
    r = results["report"]
    for name in RECIPES:
        if name != "report":
            p = results[name]
            results[f"{name}_speedup_per_epoch"] = round(r["epoch_minutes"] / p["epoch_minutes"], 2)
            results[f"{name}_eval_loss_ratio"] = round(p["eval_loss"] / r["eval_loss"], 4)
    save_results(results, args.out, "training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
