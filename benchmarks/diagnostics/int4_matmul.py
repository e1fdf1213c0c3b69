"""One Falcon-7B-sized matmul at batch 1, 8 and 32: bitsandbytes nf4 against the int4 kernel, and its error.

    python -m benchmarks.diagnostics.int4_matmul

For each of Falcon-7B's three weight shapes: microseconds per call (CUDA events, after warm-up) of
`bnb.nn.Linear4bit` and of `app.modeling.int4.Int4Linear` built from the same dequantised weight, and the relative
error of each against the bf16 weight they stand for. Findings are in benchmarks/README.md.
"""

from __future__ import annotations

import json

import torch

from benchmarks.diagnostics import microseconds

SHAPES = {"query_key_value": (4672, 4544), "dense_h_to_4h": (18176, 4544), "dense_4h_to_h": (4544, 18176)}


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return round(float((out.float() - ref.float()).norm() / ref.float().norm()), 4)


def main() -> None:
    import bitsandbytes as bnb

    from app.modeling.int4 import Int4Linear

    torch.manual_seed(0)
    results = {}
    for name, (n, k) in SHAPES.items():
        weight = (torch.randn(n, k, device="cuda") * 0.02).to(torch.bfloat16)
        nf4 = bnb.nn.Linear4bit(k, n, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4")
        nf4.weight = bnb.nn.Params4bit(weight.cpu(), requires_grad=False, quant_type="nf4", compress_statistics=True)
        nf4 = nf4.cuda()
        dequantised = bnb.functional.dequantize_4bit(nf4.weight.data, nf4.weight.quant_state)
        int4 = Int4Linear(dequantised).cuda()
        for m in (1, 8, 32):
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            with torch.inference_mode():
                reference = x @ weight.T
                results[f"{name}_m{m}"] = {
                    "nf4_us": microseconds(lambda: nf4(x)),  # noqa: B023
                    "int4_us": microseconds(lambda: int4(x)),  # noqa: B023
                    "bf16_us": microseconds(lambda: x @ weight.T),  # noqa: B023
                    "nf4_error": relative_error(nf4(x), reference),
                    "int4_error": relative_error(int4(x), reference),
                    "int4_vs_nf4": relative_error(int4(x), x @ dequantised.T),
                }
        print(name, json.dumps({k: v for k, v in results.items() if k.startswith(name)}), flush=True)


if __name__ == "__main__":
    main()
