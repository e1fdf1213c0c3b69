"""int4 weights for PyTorch's int4 kernel: rounding, the kernel's layout and tiling."""

from __future__ import annotations

import pytest
import torch

from app.modeling.int4 import dequantize_groupwise, group_size_for, inner_k_tiles, quantize_groupwise


def test_int4_groups_round_to_within_half_a_step():
    torch.manual_seed(0)
    weight = torch.randn(24, 192) * torch.linspace(0.01, 2.0, 192)  # groups of very different ranges
    codes, scales_and_zeros = quantize_groupwise(weight, 64)
    assert codes.shape == (24, 192) and codes.dtype == torch.uint8 and int(codes.max()) <= 15
    assert scales_and_zeros.shape == (3, 24, 2) and scales_and_zeros.dtype == torch.bfloat16
    step = scales_and_zeros[..., 0].float().transpose(0, 1).repeat_interleave(64, dim=1)
    error = (dequantize_groupwise(codes, scales_and_zeros, 64) - weight).abs()
    assert bool((error <= step * 0.5 + 1e-3).all())


def test_int4_scales_and_zeros_have_the_kernels_layout():
    """PyTorch's CPU int4 kernel reads the same (scale, zero) layout as the CUDA one."""
    torch.manual_seed(1)
    weight, x = torch.randn(64, 256), torch.randn(3, 256, dtype=torch.bfloat16)
    codes, scales_and_zeros = quantize_groupwise(weight, 64)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32), inner_k_tiles(256))
    out = torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, 64, scales_and_zeros).float()
    reference = x.float() @ dequantize_groupwise(codes, scales_and_zeros, 64).T
    assert float((out - reference).norm() / reference.norm()) < 0.01


@pytest.mark.parametrize(("width", "group", "tiles"), [(4544, 64, 4), (18176, 128, 8), (576, 64, 4), (96, 32, 2)])
def test_int4_tiling_for_falcon_and_smollm2_widths(width, group, tiles):
    assert (group_size_for(width), inner_k_tiles(width)) == (group, tiles)


def test_int4_refuses_a_width_the_kernel_cannot_take():
    with pytest.raises(ValueError, match="group size"):
        group_size_for(100)
