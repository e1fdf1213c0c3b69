"""CPU decoding, side by side: transformers' `generate` with dynamic int8 against the kiosk's CPU loop.

    python -m benchmarks.cpu_decoding
    python -m benchmarks.cpu_decoding --drafts 0,4,6,8 [--questions 24]

The embedded default (SmolLM2-135M-Instruct + the shipped adapter, merged), one request, a 140-token
grounded prompt, greedy: time to first token and ms per token over 48 new tokens, median of 3, both paths
in one process. Writes benchmarks/results/cpu-<date>-decoding.json.

`--drafts`: prompt-lookup decoding instead (`KIOSK_DRAFT_TOKENS`, `app.generation.decoders.cpu.CpuDecoder._drafted`):
the first N test questions grounded as the service grounds them, answered one at a time with each number of
proposed tokens in turn (question by question, so that a slower minute hurts every setting alike): seconds
per answer (median and total), tokens generated, and how many answers are word for word those of the first
setting (one-token steps when it is 0). Writes benchmarks/results/cpu-<date>-drafting.json.
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

from app.generation.base import GenerationRequest
from app.generation.config import GeneratorConfig
from app.generation.local import LocalGenerator
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


def drafting(generator: LocalGenerator, drafts: list[int], questions: int) -> dict[str, object]:
    from app.settings import COPY_BIAS
    from training import qa
    from training.config import load_config
    from training.evaluate import grounded_for
    from training.finetune_config import FinetuneConfig

    config = load_config(FinetuneConfig, Path("training/configs/smollm2-135m-lora.yaml"))
    grounded = grounded_for(qa.read_pairs(qa.TEST_CSV)[:questions], config, retrieval=True)
    generator.copy_bias = COPY_BIAS
    seconds: dict[int, list[float]] = {k: [] for k in drafts}
    answers: dict[int, list[str]] = {k: [] for k in drafts}
    tokens: dict[int, int] = dict.fromkeys(drafts, 0)
    generator.generate_batch([GenerationRequest(grounded[0].prompt, 8, time.monotonic() + 600)])  # warm-up
    for g in grounded:
        request = GenerationRequest(g.prompt, 64, time.monotonic() + 600, copy_from=tuple(g.context.sentences))
        for k in drafts:
            generator.draft_tokens = k
            start = time.perf_counter()
            result = generator.generate_batch([request])[0]
            seconds[k].append(time.perf_counter() - start)
            answers[k].append(result.text)
            tokens[k] += result.tokens
    reference = answers[drafts[0]]
    return {
        f"draft_{k}": {
            "median_s": round(statistics.median(seconds[k]), 3),
            "total_s": round(sum(seconds[k]), 2),
            "tokens": tokens[k],
            "same_answer_as_first_setting": sum(a == b for a, b in zip(answers[k], reference, strict=True)),
        }
        for k in drafts
    } | {"questions": len(grounded), "copy_bias": COPY_BIAS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, default=Path("models/adapters/smollm2-135m-hcm"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--drafts", help="compare prompt-lookup decoding with these numbers of proposed tokens")
    parser.add_argument("--questions", type=int, default=24)
    args = parser.parse_args(argv)
    config = GeneratorConfig(
        base_model="packaged:smollm2",
        adapter_dir=args.adapter,
        quantize_4bit=False,
        cpu_int8=True,
        base_cache_dir=Path("models/base"),
        copy_bias=0.0,
        draft_tokens=0,
    )
    generator = LocalGenerator.load(config)
    if generator.decoder is generator.fallback:
        raise SystemExit("the CPU decoding loop does not support this model")
    results: dict[str, object] = {
        "card": "cpu",
        "date": datetime.date.today().isoformat(),
        "cpu_cores": os.cpu_count(),
        "prompt_tokens": len(generator.tokenizer(PROMPT)["input_ids"]),
    }
    if args.drafts:
        del results["prompt_tokens"]
        results |= drafting(generator, [int(k) for k in args.drafts.split(",")], args.questions)
        save_results(results, args.out, "drafting")
        print(results)
        return 0
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
