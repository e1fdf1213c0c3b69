"""Where a batch-32 decoding step goes on a GPU: eager against compiled, and the kernel profile.

    python -m benchmarks.diagnostics.batch_step --tokenizer .bench/tokenizer

Falcon-7B-shaped random weights in 4-bit, no adapter. Findings are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from app.modeling.base import load_base, prepare_for_serving
from benchmarks.falcon_shape import FALCON_TARGETS, make_model_dir


def timed(model: torch.nn.Module, batch: int, new: int) -> float:
    ids = torch.randint(100, 1000, (batch, 40), device="cuda")
    torch.cuda.synchronize()
    start = time.perf_counter()
    model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=new,
        min_new_tokens=new,
        do_sample=False,
        pad_token_id=0,
    )
    torch.cuda.synchronize()
    return time.perf_counter() - start


def ms_per_step(model: torch.nn.Module, batch: int) -> float:
    for _ in range(2):
        timed(model, batch, 33)  # warm-up, and the static cache reaches its final length
    return round((timed(model, batch, 33) - timed(model, batch, 1)) / 32 * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/falcon-bench"))
    args = parser.parse_args()
    model_dir = make_model_dir(args.workdir / "model", args.tokenizer)
    model, _ = load_base(str(model_dir), quantize_4bit=True, targets=FALCON_TARGETS)
    out = {f"eager_batch{b}_ms_per_step": ms_per_step(model, b) for b in (1, 32)}
    model = prepare_for_serving(model, merge=False, compile_decoding=True)
    out |= {f"compiled_batch{b}_ms_per_step": ms_per_step(model, b) for b in (1, 32)}
    print(json.dumps(out), flush=True)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        timed(model, 32, 8)
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=15))


if __name__ == "__main__":
    main()
