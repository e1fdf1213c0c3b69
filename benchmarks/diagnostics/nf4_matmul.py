"""The Triton nf4 kernel against bitsandbytes on Falcon-7B's four weight shapes, and its launch settings.

    python -m benchmarks.diagnostics.nf4_matmul [--quick]

For each shape and 1, 16, 32 and 64 rows: microseconds per call (CUDA events, after warm-up) of
`bnb.nn.Linear4bit`, of the bf16 weight (what dense weights would cost), and of `app.nf4_matmul` with
every setting of a small grid; the best setting per (shape, block of rows) is printed as the `CONFIGS`
table of `app.nf4_matmul`. Also the kernel's largest difference from bitsandbytes' own dequantised
weight, in bf16 units of the output. Findings are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch

from app.nf4_matmul import KernelConfig, Nf4Weight, _launch, block_m

SHAPES = {
    "query_key_value": (4672, 4544),
    "dense": (4544, 4544),
    "dense_h_to_4h": (18176, 4544),
    "dense_4h_to_h": (4544, 18176),
}
ROWS = (1, 16, 32, 64)


def microseconds(fn, iters: int = 100) -> float:  # type: ignore[no-untyped-def]
    for _ in range(5):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return round(start.elapsed_time(end) / iters * 1000, 1)


def grid(quick: bool) -> list[KernelConfig]:
    if quick:
        return [KernelConfig(n, b, 4, 4) for n in (32, 64) for b in (64, 128)]
    return [KernelConfig(n, b, w, 3) for n, b, w in itertools.product((32, 64, 128), (64, 128, 256), (4, 8))]


def main(argv: list[str] | None = None) -> None:
    import bitsandbytes as bnb

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    best: dict[str, dict[str, object]] = {}
    for name, (n, k) in SHAPES.items():
        weight = (torch.randn(n, k, device="cuda") * 0.02).to(torch.bfloat16)
        layer = bnb.nn.Linear4bit(k, n, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4")
        layer.weight = bnb.nn.Params4bit(weight.cpu(), requires_grad=False, quant_type="nf4", compress_statistics=True)
        layer = layer.cuda()
        nf4 = Nf4Weight.from_bnb(layer)
        dequantised = bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state)
        for m in ROWS:
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            with torch.inference_mode():
                reference = x.float() @ dequantised.float().T
                timings = {}
                for config in grid(args.quick):
                    try:
                        timings[config] = microseconds(lambda: _launch(x, nf4, config))  # noqa: B023
                    except Exception as exc:  # out of shared memory or registers: not a candidate
                        print(f"  {name} m={m} {config}: {type(exc).__name__}", flush=True)
                chosen = min(timings, key=timings.__getitem__)
                out = _launch(x, nf4, chosen).float()
                ulp = reference.abs().max().item() * 2**-8
                row = {
                    "rows": m,
                    "bnb_us": microseconds(lambda: layer(x)),  # noqa: B023
                    "bf16_us": microseconds(lambda: x @ weight.T),  # noqa: B023
                    "kernel_us": timings[chosen],
                    "config": [chosen.block_n, chosen.block_bytes, chosen.warps, chosen.stages],
                    "max_error_in_output_ulps": round((out - reference).abs().max().item() / ulp, 3),
                    "bnb_max_error_in_output_ulps": round((layer(x).float() - reference).abs().max().item() / ulp, 3),
                    "gb_per_s": round(n * k / 2 / timings[chosen] / 1e3, 1),
                }
            print(name, json.dumps(row), flush=True)
            best[f"({n}, {k}, {block_m(m)})"] = {"us": timings[chosen], "config": row["config"]}
    print("CONFIGS", json.dumps(best), flush=True)


if __name__ == "__main__":
    main()
