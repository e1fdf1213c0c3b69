"""Serving benchmark on a GPU: the student report's way (a) against the project's serving path (b).

    python -m benchmarks.gpu_serving --workdir /tmp/falcon --tokenizer models/base/smollm2-135m-instruct

Falcon-7B-shaped random weights in 4-bit nf4 (loaded by `app.modeling.base.load_base`, 4-bit checked), a random
LoRA adapter (r=64 on query_key_value, dense_h_to_4h, dense_4h_to_h). In one run:
(a) `generate`, greedy, one request at a time, adapter unmerged, dynamic cache;
(b) the kiosk's `LocalGenerator`: adapter merged into the 4-bit nf4 weights (or, with --int4, folded into
    int4 weights for PyTorch's int4 kernel), decoded by `app.generation.decoders.gpu` (one CUDA graph per step; with
    --generate, transformers' `generate` with a static cache and compiled decoding), requests batched by the
    `GenerationWorker`;
(b') with --compare, the same with the other weight format; with --compare-loop, the same with the other
    decoding loop (app.generation.decoders.gpu's CUDA graph per step, or transformers' compiled `generate`).
Each serving path's logits are compared with (a)'s on the same prompt: the price in accuracy.
Prints a table and writes benchmarks/results/<card>-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from app import prompt
from app.generation import stopping
from app.generation.base import GenerationRequest
from app.generation.config import GeneratorConfig
from app.generation.decoders.common import prompt_positions_and_mask
from app.generation.decoders.gpu import GpuDecoder
from app.generation.local import LocalGenerator
from app.generation.worker import GenerationWorker
from app.modeling.base import load_base
from app.modeling.lora import verify_adapter
from benchmarks import save_results
from benchmarks.falcon_shape import FALCON_TARGETS, TINY, make_model_dir, random_lora, save_adapter

GiB = 1024**3
TEXT = "Hồ Chí Minh read the Proclamation of Independence in Ba Đình Square in Hanoi on 2 September 1945. "


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def prompt_ids(tokenizer: Any, n: int, batch: int = 1) -> torch.Tensor:
    ids = tokenizer(TEXT * (n // 10 + 2), add_special_tokens=False)["input_ids"][:n]
    return torch.tensor([ids] * batch, device="cuda" if torch.cuda.is_available() else "cpu")


def prompt_text(tokenizer: Any, n: int) -> str:
    return tokenizer.decode(prompt_ids(tokenizer, n)[0])


def timed_generate(model: Any, ids: torch.Tensor, new: int) -> float:
    sync()
    start = time.perf_counter()
    model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=new,
        min_new_tokens=new,
        do_sample=False,
        pad_token_id=0,
    )
    sync()
    return time.perf_counter() - start


def seed_way(model: Any, tokenizer: Any, runs: int) -> dict[str, float]:
    """(a) one request at a time through `generate`, adapter unmerged."""
    timed_generate(model, prompt_ids(tokenizer, 40), 4)  # warm-up
    ttft_300 = statistics.median(timed_generate(model, prompt_ids(tokenizer, 300), 1) for _ in range(3))
    ttft_40 = statistics.median(timed_generate(model, prompt_ids(tokenizer, 40), 1) for _ in range(3))
    latencies = [timed_generate(model, prompt_ids(tokenizer, 40), 64) for _ in range(runs)]
    out = summary(ttft_300, ttft_40, latencies)
    for batch in (8, 32):
        # The report's way has no batching: concurrent visitors are served one after another.
        out[f"tokens_per_s_concurrency_{batch}"] = round(64 / statistics.median(latencies), 1)
        out[f"tokens_per_s_static_batch_{batch}"] = round(
            batch * 64 / timed_generate(model, prompt_ids(tokenizer, 40, batch), 64), 1
        )
    return out


def summary(ttft_300: float, ttft_40: float, latencies: list[float]) -> dict[str, float]:
    p50 = statistics.median(latencies)
    p95 = sorted(latencies)[max(0, round(0.95 * (len(latencies) - 1)))]
    return {
        "ttft_300_ms": round(ttft_300 * 1000, 1),
        "ms_per_token": round((p50 - ttft_40) / 63 * 1000, 2),
        "latency_64_p50_s": round(p50, 3),
        "latency_64_p95_s": round(p95, 3),
    }


def project_way(generator: LocalGenerator, runs: int) -> dict[str, float]:
    """(b) the kiosk's generator, through its worker for concurrent requests."""
    tok = generator.tokenizer
    short, long = prompt_text(tok, 40), prompt_text(tok, 300)

    def one(text: str, new: int) -> float:
        sync()
        start = time.perf_counter()
        generator.generate_batch([GenerationRequest(text, new, time.monotonic() + 600)])
        sync()
        return time.perf_counter() - start

    compile_start = time.perf_counter()
    for text in (short, long):
        for new in (1, 64):
            one(text, new)
    warm = {"compile_and_warmup_s": round(time.perf_counter() - compile_start, 1)}
    ttft_300 = statistics.median(one(long, 1) for _ in range(3))
    ttft_40 = statistics.median(one(short, 1) for _ in range(3))
    latencies = [one(short, 64) for _ in range(runs)]
    out = warm | summary(ttft_300, ttft_40, latencies)
    for concurrency in (8, 32):
        asyncio.run(concurrent(generator, short, concurrency))  # warm-up of this batch shape
        tokens, seconds = asyncio.run(concurrent(generator, short, concurrency))
        out[f"tokens_per_s_concurrency_{concurrency}"] = round(tokens / seconds, 1)
        # the same batch on the calling thread, without the worker: what the queueing costs
        requests = [GenerationRequest(short, 64, time.monotonic() + 600) for _ in range(concurrency)]
        sync()
        start = time.perf_counter()
        results = generator.generate_batch(requests)
        sync()
        out[f"tokens_per_s_direct_batch_{concurrency}"] = round(
            sum(r.tokens for r in results) / (time.perf_counter() - start), 1
        )
    return out


async def concurrent(generator: LocalGenerator, text: str, n: int) -> tuple[int, float]:
    worker = GenerationWorker(generator, queue_size=n, max_batch=n, batch_wait_ms=50)
    worker.start(warmup=False)
    start = time.perf_counter()
    results = await asyncio.gather(
        *(worker.submit(GenerationRequest(text, 64, time.monotonic() + 600)) for _ in range(n))
    )
    seconds = time.perf_counter() - start
    worker.stop()
    return sum(r.tokens for r in results), seconds


def load_adapted(model_dir: Path, workdir: Path, results: dict[str, Any]) -> tuple[Any, Any]:
    """The 4-bit base (checked) with a random report-shaped adapter, unmerged: (a)'s model."""
    base, tokenizer = load_base(str(model_dir), quantize_4bit=torch.cuda.is_available(), targets=FALCON_TARGETS)
    if torch.cuda.is_available():
        import bitsandbytes as bnb

        results["linear4bit_layers"] = sum(isinstance(m, bnb.nn.Linear4bit) for m in base.modules())
        results["gpu_memory_after_load_gib"] = round(torch.cuda.memory_allocated() / GiB, 2)
    model = random_lora(base)
    verify_adapter(save_adapter(model, workdir / "adapter"))
    return model, tokenizer


@torch.inference_mode()
def last_logits(model: Any, tokenizer: Any) -> torch.Tensor:
    ids = prompt_ids(tokenizer, 40)
    return model(input_ids=ids).logits[0, -8:].float()


def serving_path(model: Any, tokenizer: Any, runs: int, *, int4_kernel: bool, gpu_loop: bool) -> dict[str, Any]:
    """Prepare `model` (the unmerged adapter) as the kiosk serves it, compare its logits, time it."""
    cuda = torch.cuda.is_available()
    reference = last_logits(model, tokenizer)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    config = GeneratorConfig(
        compile_decoding=cuda,
        gpu_int4_kernel=int4_kernel,
        gpu_decoding_loop=gpu_loop,
        max_batch_size=32,
        gpu_max_length=1024,
        copy_bias=0.0,
        draft_tokens=0,
    )
    generator = LocalGenerator.serving(model, tokenizer, config)
    decoding = "generate" if generator.decoder is generator.fallback else type(generator.decoder).__name__
    out: dict[str, Any] = {"prepare_s": round(time.perf_counter() - t, 1), "decoding": decoding}
    served = last_logits(generator.model, tokenizer)
    out["logits_relative_error_vs_unmerged"] = round(float((served - reference).norm() / reference.norm()), 4)
    out["top1_agreement_vs_unmerged"] = round(float((served.argmax(-1) == reference.argmax(-1)).float().mean()), 3)
    if isinstance(generator.decoder, GpuDecoder):
        ids = prompt_ids(tokenizer, 40)
        positions, causal = prompt_positions_and_mask(torch.ones_like(ids))
        with torch.inference_mode():
            ours = generator.decoder._forward(ids, positions, 0, 40, causal).float()
        error = (ours[0] - served[-1]).norm() / served[-1].norm()  # the loop's arithmetic against transformers'
        out["gpu_loop_logits_relative_error_vs_transformers"] = round(float(error), 4)
    out |= project_way(generator, runs)
    if cuda:
        # what start-up runs: every CUDA graph, then the largest request the cache allows (32 x 1,016 tokens)
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        generator.warmup()
        out["largest_request_warmup_s"] = round(time.perf_counter() - t, 1)
        out["gpu_memory_peak_largest_request_gib"] = round(torch.cuda.max_memory_allocated() / GiB, 2)
    if cuda:
        out["gpu_memory_after_prepare_gib"] = round(torch.cuda.memory_allocated() / GiB, 2)
        out["gpu_memory_peak_gib"] = round(torch.cuda.max_memory_allocated() / GiB, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/falcon-bench"))
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tiny", action="store_true", help="a tiny Falcon, to check the script on a CPU")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--skip-a", action="store_true", help="only the project's path (a quicker re-run)")
    parser.add_argument("--int4", action="store_true", help="(b) with KIOSK_GPU_INT4_KERNEL on")
    parser.add_argument("--compare", action="store_true", help="also (b'): (b) with the other weight format")
    parser.add_argument(
        "--compare-loop",
        action="store_true",
        help="also (b''): (b) with transformers' compiled `generate` instead of the GPU decoding loop",
    )
    parser.add_argument("--generate", action="store_true", help="(b) with transformers' compiled `generate`")
    args = parser.parse_args(argv)
    # Random weights emit blank lines now and then; a real answer would stop there, a benchmark must not.
    stopping.STOP_STRINGS = prompt.STOP_STRINGS = tuple(s for s in prompt.STOP_STRINGS if s.strip())
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    t = time.perf_counter()
    model_dir = make_model_dir(args.workdir / "model", args.tokenizer, TINY if args.tiny else None)
    results: dict[str, Any] = {
        "card": card,
        "date": datetime.date.today().isoformat(),
        "model_written_s": round(time.perf_counter() - t, 1),
    }
    cuda = torch.cuda.is_available()
    t = time.perf_counter()
    model, tokenizer = load_adapted(model_dir, args.workdir, results)
    results["load_s"] = round(time.perf_counter() - t, 1)
    if not args.skip_a:
        results["a_report_way"] = seed_way(model, tokenizer, args.runs)
    print(json.dumps(results, indent=1), flush=True)
    results["b_project_way"] = serving_path(
        model, tokenizer, args.runs, int4_kernel=args.int4, gpu_loop=not args.generate
    )
    print(json.dumps(results, indent=1), flush=True)
    if cuda and args.compare:
        del model
        torch.cuda.empty_cache()
        model, tokenizer = load_adapted(model_dir, args.workdir, {})
        other = "b_nf4_merge" if args.int4 else "b_int4_kernel"
        results[other] = serving_path(
            model, tokenizer, max(3, args.runs // 3), int4_kernel=not args.int4, gpu_loop=not args.generate
        )
    if cuda and args.compare_loop:
        del model
        torch.cuda.empty_cache()
        model, tokenizer = load_adapted(model_dir, args.workdir, {})
        other = "b_gpu_loop" if args.generate else "b_transformers_generate"
        results[other] = serving_path(
            model, tokenizer, max(3, args.runs // 3), int4_kernel=args.int4, gpu_loop=args.generate
        )
    if "a_report_way" in results:
        a, b = results["a_report_way"], results["b_project_way"]
        results["speedup_per_token"] = round(a["ms_per_token"] / b["ms_per_token"], 2)
    save_results(results, args.out, "serving")
    return 0


if __name__ == "__main__":
    sys.exit(main())
