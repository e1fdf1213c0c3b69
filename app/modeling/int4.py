"""4-bit weights that stay fast when several requests decode together (GPU serving only).

bitsandbytes' 4-bit matmul is fast at batch 1 only: from batch 2 on it dequantises the whole weight to
bf16 and runs a dense GEMM, every step, which caps batched decoding (see benchmarks/README.md). PyTorch's
own int4 kernel (`aten._weight_int4pack_mm`, "tinygemm") multiplies straight from packed 4-bit weights
at any small batch. Its format is affine int4 in groups along the input dimension: w = (q - 8)·scale +
zero, q in 0..15, one bf16 (scale, zero) pair per group.

`to_int4` converts a loaded model for serving: each bitsandbytes `Linear4bit` is dequantised, the LoRA
adapter on it (if any) is added in float32, and the sum is quantised into the int4 format. Unlike peft's
nf4 merge, which rounds back onto nf4's own grid, this is a second full rounding onto another grid: the
measured error against the trained model is about twice the nf4 merge's (benchmarks/README.md).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

GROUP_SIZES = (128, 64, 32)  # the kernel's; the largest that divides the input width is taken


class Int4Linear(nn.Module):
    """A linear layer whose weight is packed for `aten._weight_int4pack_mm` (CUDA, bf16 activations)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.group_size = group_size_for(self.in_features)
        codes, scales_and_zeros = quantize_groupwise(weight, self.group_size)
        packed = (codes[:, ::2] << 4 | codes[:, 1::2]).to(torch.uint8)  # even columns in the high nibble
        tiles = inner_k_tiles(self.in_features)
        # Parameters, not buffers: CUDA-graph capture treats a module's parameters as static and copies
        # other inputs into every captured graph (measured: 27.5 GiB instead of 4 with buffers).
        self.packed = nn.Parameter(torch.ops.aten._convert_weight_to_int4pack(packed, tiles), requires_grad=False)
        self.scales_and_zeros = nn.Parameter(scales_and_zeros, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.to(torch.bfloat16), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).to(torch.bfloat16)
        out = torch.ops.aten._weight_int4pack_mm(rows, self.packed, self.group_size, self.scales_and_zeros)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}"


def group_size_for(in_features: int) -> int:
    for size in GROUP_SIZES:
        if in_features % size == 0:
            return size
    raise ValueError(f"no int4 group size in {GROUP_SIZES} divides an input width of {in_features}")


def inner_k_tiles(in_features: int) -> int:
    """The kernel's K tiling: 8, 4 or 2 tiles of 16 columns, whichever divides the width (Falcon's 4544: 4)."""
    for tiles in (8, 4, 2):
        if in_features % (16 * tiles) == 0:
            return tiles
    raise ValueError(f"an int4 weight needs an input width divisible by 32, got {in_features}")


def quantize_groupwise(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes [out, in] uint8 in 0..15, scales_and_zeros [in / group, out, 2] bf16) for w ≈ (q - 8)·s + z.

    Scale and zero are rounded to bf16 first and the codes computed from the rounded values, so that the
    codes compensate for most of that rounding (not all: a group far from zero can clip at 0 or 15).
    """
    out_features, in_features = weight.shape
    groups = weight.float().reshape(out_features, in_features // group_size, group_size)
    low, high = groups.amin(dim=-1), groups.amax(dim=-1)
    scale = ((high - low) / 15).clamp(min=1e-8).to(torch.bfloat16)
    zero = (low + 8 * scale.float()).to(torch.bfloat16)
    offset = zero.float() - 8 * scale.float()
    codes = ((groups - offset[..., None]) / scale.float()[..., None]).round().clamp(0, 15).to(torch.uint8)
    scales_and_zeros = torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous()
    return codes.reshape(out_features, in_features), scales_and_zeros


def dequantize_groupwise(codes: torch.Tensor, scales_and_zeros: torch.Tensor, group_size: int) -> torch.Tensor:
    """The float32 weight that `quantize_groupwise`'s output stands for (tests and error reports)."""
    out_features, in_features = codes.shape
    scale, zero = scales_and_zeros.float().transpose(0, 1).unbind(-1)  # [out, groups] each
    groups = codes.float().reshape(out_features, in_features // group_size, group_size)
    return ((groups - 8) * scale[..., None] + zero[..., None]).reshape(out_features, in_features)


def _dequantized(module: Any) -> torch.Tensor:
    import bitsandbytes.functional as bnb_f

    return bnb_f.dequantize_4bit(module.weight.data, module.weight.quant_state).float()


def _lora_delta(module: Any) -> torch.Tensor | None:
    deltas = [module.get_delta_weight(name).float() for name in module.active_adapters if name in module.lora_A]
    return sum(deltas[1:], deltas[0]) if deltas else None


def to_int4(model: Any) -> Any:
    """Every bitsandbytes 4-bit layer (with its LoRA adapter added, if any) as an `Int4Linear`.

    Returns the plain transformers model (a peft wrapper is unwrapped once its adapters are folded in).
    Fails loudly if nothing was converted: serving would silently take the slow path otherwise.
    """
    import bitsandbytes as bnb

    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # pragma: no cover - peft is a dependency
        LoraLayer = ()  # type: ignore[assignment,misc]

    converted = 0
    for name, module in list(model.named_modules()):
        is_lora = isinstance(module, LoraLayer) and isinstance(module.get_base_layer(), bnb.nn.Linear4bit)
        if not (is_lora or (isinstance(module, bnb.nn.Linear4bit) and not _inside_lora(model, name))):
            continue
        base = module.get_base_layer() if is_lora else module
        weight = _dequantized(base)
        delta = _lora_delta(module) if is_lora else None
        if delta is not None:
            weight += delta
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, Int4Linear(weight, base.bias))
        converted += 1
        del weight, delta
    if converted == 0:
        raise RuntimeError("no bitsandbytes 4-bit layer to convert to int4: was the model loaded in 4-bit?")
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    torch.cuda.empty_cache()
    log.info("int4 serving weights: %d layers converted", converted)
    return model


def _inside_lora(model: nn.Module, name: str) -> bool:
    """A `base_layer` of a LoRA wrapper is converted together with its wrapper, not on its own."""
    return name.endswith(".base_layer")
