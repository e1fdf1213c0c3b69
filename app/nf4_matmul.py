"""A 4-bit nf4 matmul for a few rows at a time: the decoding step of batched requests on a GPU.

bitsandbytes multiplies straight from its 4-bit weights only for one row; from two rows on it dequantises
every weight to bf16 and runs a dense matmul, about 30 GB of memory traffic per decoding step of
Falcon-7B (benchmarks/README.md: at 32 rows the 4-bit matmuls take ~14 ms of a 27 ms step). This Triton
kernel reads the packed 4-bit weights once per step and dequantises them in registers, next to the
multiplication.

It reads bitsandbytes' own storage, so the weights are not rounded a second time (the int4 route in
`app.int4` did that and doubled the error): the packed bytes are used as they are (a view, no copy), and
the double-quantised block scales are expanded once to float16 (one per 64 weights, +1/32 byte per
weight). Each weight becomes `code[nibble] * scale` in float32 and is rounded to bf16, as bitsandbytes'
own dequantisation does; the products are summed in float32.

Prompts (hundreds of rows) are compute-bound and stay with bitsandbytes (`Nf4Linear`). Without Triton or
a GPU, `Nf4Weight.dequantize` gives the same numbers in plain torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

try:  # Triton comes with torch's CUDA wheels; the CPU wheel has none
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None

MAX_ROWS = 64  # above this a step is compute-bound: bitsandbytes' dequantise + GEMM is as good


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
        """The weight as the kernel sees it, in plain torch (reference and CPU fallback)."""
        high, low = (self.packed >> 4).long(), (self.packed & 0xF).long()
        nibbles = torch.stack([high, low], dim=-1).reshape(self.packed.shape[0], -1)
        values = self.code[nibbles] * self.scales.float().repeat_interleave(self.group, dim=1)
        return values.to(dtype)


def nf4_matmul(x: torch.Tensor, weight: Nf4Weight, config: KernelConfig | None = None) -> torch.Tensor:
    """x [..., in] @ weightᵀ (+ bias): the Triton kernel on a GPU, dequantise + matmul otherwise."""
    out_features, in_features = weight.shape
    rows = x.reshape(-1, in_features)
    if triton is None or not x.is_cuda or rows.shape[0] > MAX_ROWS:
        y = F.linear(rows, weight.dequantize(x.dtype))
    else:
        y = _launch(rows.contiguous(), weight, config or default_config(out_features, in_features, rows.shape[0]))
    if weight.bias is not None:
        y = y + weight.bias
    return y.reshape(*x.shape[:-1], out_features)


def block_m(rows: int) -> int:
    """tl.dot needs at least 16 rows; the rows beyond the input's are masked."""
    return max(16, triton.next_power_of_2(rows) if triton else rows)


def default_config(out_features: int, in_features: int, rows: int) -> KernelConfig:
    """Chosen by `benchmarks.diagnostics.nf4_matmul` on an H100 (see benchmarks/README.md)."""
    return CONFIGS.get((out_features, in_features, block_m(rows)), KernelConfig())


CONFIGS: dict[tuple[int, int, int], KernelConfig] = {}


def _launch(x: torch.Tensor, weight: Nf4Weight, config: KernelConfig) -> torch.Tensor:
    rows, in_features = x.shape
    out_features = weight.shape[0]
    y = torch.empty(rows, out_features, dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(out_features, config.block_n),)
    _nf4_kernel[grid](
        x, weight.packed, weight.scales, weight.code, y,
        rows, out_features, in_features // 2, in_features // weight.group, x.stride(0), y.stride(0),
        GROUP_BYTES=weight.group // 2, BLOCK_M=block_m(rows), BLOCK_N=config.block_n,
        BLOCK_B=config.block_bytes, DOT_F32=not x.is_cuda, num_warps=config.warps, num_stages=config.stages,
    )  # fmt: skip
    return y


if triton is not None:

    @triton.jit
    def _nf4_kernel(x_ptr, w_ptr, s_ptr, code_ptr, y_ptr, M, N, HALF_K, GROUPS, stride_x, stride_y,
                    GROUP_BYTES: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_B: tl.constexpr, DOT_F32: tl.constexpr):  # fmt: skip
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
            scale = tl.load(s_ptr + offs_n[:, None] * GROUPS + offs_b[None, :] // GROUP_BYTES, mask=col_ok & b_ok,
                            other=0.0).to(tl.float32)  # fmt: skip
            high = (tl.load(code_ptr + (packed >> 4).to(tl.int32)) * scale).to(tl.bfloat16)
            low = (tl.load(code_ptr + (packed & 0xF).to(tl.int32)) * scale).to(tl.bfloat16)
            x_even = tl.load(x_ptr + offs_m[:, None] * stride_x + 2 * offs_b[None, :], mask=row_ok & b_ok, other=0.0)
            x_odd = tl.load(x_ptr + offs_m[:, None] * stride_x + 2 * offs_b[None, :] + 1, mask=row_ok & b_ok,
                            other=0.0)  # fmt: skip
            if DOT_F32:  # Triton's CPU interpreter cannot multiply bf16 (tests only); same roundings
                acc += tl.dot(x_even.to(tl.bfloat16).to(tl.float32), tl.trans(high.to(tl.float32)))
                acc += tl.dot(x_odd.to(tl.bfloat16).to(tl.float32), tl.trans(low.to(tl.float32)))
            else:
                acc += tl.dot(x_even.to(tl.bfloat16), tl.trans(high))
                acc += tl.dot(x_odd.to(tl.bfloat16), tl.trans(low))
        tl.store(y_ptr + offs_m[:, None] * stride_y + offs_n[None, :], acc.to(y_ptr.dtype.element_ty),
                 mask=row_ok & (offs_n[None, :] < N))  # fmt: skip
