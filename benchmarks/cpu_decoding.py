"""CPU decoding, side by side: transformers' `generate` with dynamic int8 against the kiosk's CPU loop.

    python -m benchmarks.cpu_decoding

The embedded default (SmolLM2-135M-Instruct + the shipped adapter, merged), one request, a 140-token
grounded prompt, greedy: time to first token and ms per token over 48 new tokens, median of 3, both paths
in one process. Writes benchmarks/results/cpu-<date>-decoding.json.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from app.generation import GenerationRequest
from app.local_generator import LocalGenerator
from benchmarks import save_results

SOURCES = "Ho Chi Minh was born in 1890 in Kim Lien, Nghe An. " * 6
PROMPT = f"<sources>: {SOURCES}\n<human>: Who was he?\n<assistant>:"


def timings(generator: LocalGenerator, runs: int = 3) -> dict[str, float]:
    def once(new: int) -> tuple[float, int]:
        start = time.perf_counter()
        result = generator.generate_batch([GenerationRequest(PROMPT, new, time.monotonic() + 600)])[0]
        return time.perf_counter() - start, result.tokens

    once(4)  # warm-up
    first, per_token = [], []
    for _ in range(runs):
        ttft, _ = once(1)
        total, tokens = once(48)
        first.append(ttft)
        per_token.append((total - ttft) / max(1, tokens - 1))
    return {"ttft_s": round(statistics.median(first), 3), "ms_per_token": round(statistics.median(per_token) * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, default=Path("models/adapters/smollm2-135m-hcm"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    generator = LocalGenerator.load("packaged:smollm2", args.adapter, quantize_4bit=False, cpu_int8=True,
                                    cache_dir=Path("models/base"))  # fmt: skip
    if generator.decoder is None:
        raise SystemExit("the CPU decoding loop does not support this model")
    results: dict[str, object] = {"card": "cpu", "date": datetime.date.today().isoformat(), "cpu_cores": os.cpu_count(),
                                  "prompt_tokens": len(generator.tokenizer(PROMPT)["input_ids"])}  # fmt: skip
    results["cpu_loop"] = timings(generator)
    decoder, generator.decoder = generator.decoder, None
    generator.model = torch.ao.quantization.quantize_dynamic(generator.model, {torch.nn.Linear}, dtype=torch.qint8)
    results["transformers_generate_int8"] = timings(generator)
    del decoder
    a, b = results["transformers_generate_int8"], results["cpu_loop"]
    results["speedup_per_token"] = round(a["ms_per_token"] / b["ms_per_token"], 2)  # type: ignore[index]
    save_results(results, args.out, "decoding")
    return 0


if __name__ == "__main__":
    sys.exit(main())
