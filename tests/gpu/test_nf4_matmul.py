"""On a CUDA GPU with bitsandbytes and Triton: the nf4 kernel reads bitsandbytes' weights as bitsandbytes does."""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _layer(out_features: int, in_features: int, bias: bool = False):  # type: ignore[no-untyped-def]
    import bitsandbytes as bnb

    weight = torch.randn(out_features, in_features) * 0.02
    layer = bnb.nn.Linear4bit(in_features, out_features, bias=bias, compute_dtype=torch.bfloat16, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4", compress_statistics=True)
    if bias:
        layer.bias = torch.nn.Parameter(torch.randn(out_features) * 0.1)
    return layer.cuda()


def test_unpacked_weight_matches_bitsandbytes():
    import bitsandbytes as bnb

    from app.nf4_matmul import Nf4Weight

    layer = _layer(96, 320)
    expected = bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float()
    ours = Nf4Weight.from_bnb(layer).dequantize().float()
    # Same nibbles, same blocks: each weight within one bf16 step of bitsandbytes' (which rounds differently:
    # measured, 9% of the weights are bit-identical), and no error overall beyond bf16's own rounding.
    assert ((ours - expected).abs() <= expected.abs() * 2**-7 + 1e-6).all()
    assert (ours - expected).norm() / expected.norm() < 2**-8


@pytest.mark.parametrize("rows", [1, 5, 16, 33, 64])
@pytest.mark.parametrize("shape", [(96, 320), (4672, 4544), (200, 1088)])
def test_kernel_matches_dequantised_matmul(rows, shape):
    import bitsandbytes as bnb

    from app.nf4_matmul import Nf4Weight, nf4_matmul

    torch.manual_seed(rows)
    layer = _layer(*shape, bias=True)
    weight = bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state)
    x = torch.randn(1, rows, shape[1], device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        expected = x.float() @ weight.float().T + layer.bias.float()
        ours = nf4_matmul(x, Nf4Weight.from_bnb(layer)).float()
        theirs = layer(x).float()
    assert ours.shape == expected.shape
    scale = expected.abs().max()
    assert (ours - expected).abs().max() <= 4 * scale * 2**-8  # bf16 rounding of the output and the bias sum
    assert (ours - theirs).abs().max() <= 4 * scale * 2**-8
