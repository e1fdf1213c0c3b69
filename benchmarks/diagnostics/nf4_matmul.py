"""A Triton nf4 matmul for a few rows, tried against bitsandbytes on Falcon-7B's four weight shapes.

    python -m benchmarks.diagnostics.nf4_matmul [--quick]

The idea (session 3, benchmarks/README.md): from two rows on, bitsandbytes dequantises every weight to bf16
and runs a dense matmul; a kernel that reads bitsandbytes' packed nf4 bytes as they are (a view, no second
rounding) and dequantises in registers next to `tl.dot` should read 4x fewer bytes. Measured on an H100 it
reached only 30-70 GB/s, 3-8x slower than bitsandbytes at 1-64 rows (the per-element code-table gather and
the even/odd split of the input are the suspects), so the product does not use it: the GPU decoding loop
(`app.generation.decoders.gpu`) met the throughput target with bitsandbytes' kernels. Kept here, with its numbers, as
the starting point for a faster one.

For each shape and 1, 16, 32 and 64 rows: microseconds per call (CUDA events, after warm-up) of
`bnb.nn.Linear4bit`, of the bf16 weight, and of the kernel with every setting of a small grid; the best
setting per (shape, block of rows); the kernel's largest difference from bitsandbytes' own dequantised
weight, in bf16 units of the output. (Without a GPU, `TRITON_INTERPRET=1` runs `_launch` on CPU tensors.)
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass
from typing import Any

import torch

from benchmarks.diagnostics import microseconds

try:  # Triton comes with torch's CUDA wheels; the CPU wheel has none
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None


@dataclass(frozen=True)
class KernelConfig:
    block_n: int = 64  # output features per program
    block_bytes: int = 64  # packed bytes (2 weights each) per row and loop iteration
    warps: int = 4
    stages: int = 4


@dataclass
class Nf4Weight:
    """A bitsandbytes nf4 weight [out, in] as the kernel reads it."""

    packed: torch.Tensor  # uint8 [out, in // 2]; high nibble = even input index, low nibble = odd
    scales: torch.Tensor  # float16 [out, in // group]
    code: torch.Tensor  # float32 [16]: the nf4 value of each nibble
    group: int
    bias: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.packed.shape[0], self.packed.shape[1] * 2

    @classmethod
    def from_bnb(cls, module: Any) -> Nf4Weight:
        """The weight of a `bnb.nn.Linear4bit` (nf4), sharing its packed storage."""
        import bitsandbytes.functional as bnbf

        state = module.weight.quant_state
        if state.quant_type != "nf4":
            raise ValueError(f"only nf4 weights are supported, not {state.quant_type}")
        out_features, in_features = state.shape
        if in_features % state.blocksize or state.blocksize % 2:
            raise ValueError(f"a row of {in_features} weights is not a whole number of {state.blocksize}-blocks")
        scales = state.absmax
        if state.nested:
            scales = bnbf.dequantize_blockwise(state.absmax, state.state2) + state.offset
        packed = module.weight.data.view(torch.uint8).view(out_features, in_features // 2)
        return cls(
            packed=packed,
            scales=scales.float().view(out_features, in_features // state.blocksize).half(),
            code=state.code.float().to(packed.device),
            group=state.blocksize,
            bias=module.bias,
        )

    @classmethod
    def quantize(cls, weight: torch.Tensor, code: torch.Tensor, group: int = 64) -> Nf4Weight:
        """Round a float weight to nf4 as bitsandbytes does (absmax per block, nearest code): for tests."""
        rows, cols = weight.shape
        blocks = weight.float().reshape(rows, cols // group, group)
        absmax = blocks.abs().amax(-1, keepdim=True).clamp(min=1e-12)
        nibbles = ((blocks / absmax)[..., None] - code.float()).abs().argmin(-1).reshape(rows, cols).to(torch.uint8)
        packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
        return cls(packed.contiguous(), absmax.reshape(rows, -1).half(), code.float(), group)

    def dequantize(self, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
        """The weight as the kernel sees it, in plain torch (the reference)."""
        high, low = (self.packed >> 4).long(), (self.packed & 0xF).long()
        nibbles = torch.stack([high, low], dim=-1).reshape(self.packed.shape[0], -1)
        values = self.code[nibbles] * self.scales.float().repeat_interleave(self.group, dim=1)
        return values.to(dtype)


def block_m(rows: int) -> int:
    """tl.dot needs at least 16 rows; the rows beyond the input's are masked."""
    return max(16, triton.next_power_of_2(rows))


def _launch(x: torch.Tensor, weight: Nf4Weight, config: KernelConfig) -> torch.Tensor:
    rows, in_features = x.shape
    out_features = weight.shape[0]
    y = torch.empty(rows, out_features, dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(out_features, config.block_n),)
    _nf4_kernel[grid](
        x,
        weight.packed,
        weight.scales,
        weight.code,
        y,
        rows,
        out_features,
        in_features // 2,
        in_features // weight.group,
        x.stride(0),
        y.stride(0),
        GROUP_BYTES=weight.group // 2,
        BLOCK_M=block_m(rows),
        BLOCK_N=config.block_n,
        BLOCK_B=config.block_bytes,
        DOT_F32=not x.is_cuda,
        num_warps=config.warps,
        num_stages=config.stages,
    )
    return y


if triton is not None:

    @triton.jit
    def _nf4_kernel(
        x_ptr,
        w_ptr,
        s_ptr,
        code_ptr,
        y_ptr,
        M,
        N,
        HALF_K,
        GROUPS,
        stride_x,
        stride_y,
        GROUP_BYTES: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_B: tl.constexpr,
        DOT_F32: tl.constexpr,
    ):
        """y[:M, n-block] = x @ W[n-block]ᵀ; W packed two nibbles a byte, one scale per group of bytes."""
        pid = tl.program_id(0)
        offs_m = tl.arange(0, BLOCK_M)
        offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = offs_m[:, None] < M
        col_ok = offs_n[:, None] < N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for start in range(0, HALF_K, BLOCK_B):
            offs_b = start + tl.arange(0, BLOCK_B)
            b_ok = offs_b[None, :] < HALF_K
            packed = tl.load(w_ptr + offs_n[:, None] * HALF_K + offs_b[None, :], mask=col_ok & b_ok, other=0)
            scale = tl.load(
                s_ptr + offs_n[:, None] * GROUPS + offs_b[None, :] // GROUP_BYTES, mask=col_ok & b_ok, other=0.0
            ).to(tl.float32)
            high = (tl.load(code_ptr + (packed >> 4).to(tl.int32)) * scale).to(tl.bfloat16)
            low = (tl.load(code_ptr + (packed & 0xF).to(tl.int32)) * scale).to(tl.bfloat16)
            x_even = tl.load(x_ptr + offs_m[:, None] * stride_x + 2 * offs_b[None, :], mask=row_ok & b_ok, other=0.0)
            x_odd = tl.load(x_ptr + offs_m[:, None] * stride_x + 2 * offs_b[None, :] + 1, mask=row_ok & b_ok, other=0.0)
            if DOT_F32:  # Triton's CPU interpreter cannot multiply bf16 (tests only); same roundings
                acc += tl.dot(x_even.to(tl.bfloat16).to(tl.float32), tl.trans(high.to(tl.float32)))
                acc += tl.dot(x_odd.to(tl.bfloat16).to(tl.float32), tl.trans(low.to(tl.float32)))
            else:
                acc += tl.dot(x_even.to(tl.bfloat16), tl.trans(high))
                acc += tl.dot(x_odd.to(tl.bfloat16), tl.trans(low))
        tl.store(
            y_ptr + offs_m[:, None] * stride_y + offs_n[None, :],
            acc.to(y_ptr.dtype.element_ty),
            mask=row_ok & (offs_n[None, :] < N),
        )


SHAPES = {
    "query_key_value": (4672, 4544),
    "dense": (4544, 4544),
    "dense_h_to_4h": (18176, 4544),
    "dense_4h_to_h": (4544, 18176),
}
ROWS = (1, 16, 32, 64)


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
                        timings[config] = microseconds(lambda: _launch(x, nf4, config), iters=100, warmup=5)  # noqa: B023
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
