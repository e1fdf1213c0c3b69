"""Model loading pieces that need no GPU: Falcon's plain linear layers, the 4-bit check, layer freezing."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from app.modeling.base import QuantizationError, frozen_layer_count, plain_linear_layers, verify_4bit

TARGETS = ("query_key_value", "dense_h_to_4h", "dense_4h_to_h")


def _tiny_falcon():
    from transformers import FalconConfig, FalconForCausalLM

    config = FalconConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          multi_query=True, parallel_attn=True, new_decoder_architecture=False, bias=False,
                          alibi=False)  # fmt: skip
    return FalconForCausalLM(config)


def test_falcon_is_built_with_plain_linear_layers_inside_the_context():
    stock = _tiny_falcon()
    assert all(type(m) is not nn.Linear for n, m in stock.named_modules() if n.endswith(TARGETS))
    with plain_linear_layers("falcon"):
        plain = _tiny_falcon()
    assert all(type(m) is nn.Linear for n, m in plain.named_modules() if n.endswith(TARGETS))
    plain.load_state_dict(stock.state_dict())
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(stock(ids).logits, plain(ids).logits)  # the same maths
    from transformers.models.falcon import modeling_falcon

    assert modeling_falcon.FalconLinear is not nn.Linear  # restored afterwards


@pytest.fixture()
def fake_bnb(monkeypatch):
    """A stand-in for bitsandbytes, so the check's logic runs without a GPU."""

    class Linear4bit(nn.Linear):
        pass

    module = types.ModuleType("bitsandbytes")
    module.nn = types.SimpleNamespace(Linear4bit=Linear4bit)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bitsandbytes", module)
    return Linear4bit


def test_4bit_check_fails_loudly_on_an_unquantised_model(fake_bnb):
    with pytest.raises(QuantizationError, match="not bitsandbytes Linear4bit"):
        verify_4bit(_tiny_falcon(), TARGETS)


def test_4bit_check_passes_when_every_target_is_linear4bit(fake_bnb):
    model = _tiny_falcon()
    for _name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in TARGETS:
                setattr(module, child_name, fake_bnb(child.in_features, child.out_features, bias=False))
    assert verify_4bit(model, TARGETS) == 2 * 3


@pytest.mark.parametrize(("freeze", "layers", "expected"), [(16, 32, 16), (16.0, 32, 16), (0.5, 30, 15),
                                                            (0.67, 30, 20), (0, 30, 0)])  # fmt: skip
def test_frozen_layer_count(freeze, layers, expected):
    assert frozen_layer_count(freeze, layers) == expected


@pytest.mark.parametrize("freeze", [32, 40, -1])
def test_frozen_layer_count_refuses_impossible_values(freeze):
    with pytest.raises(ValueError):
        frozen_layer_count(freeze, 32)


def test_int4_groups_round_to_within_half_a_step():
    from app.modeling.int4 import dequantize_groupwise, quantize_groupwise

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
    from app.modeling.int4 import dequantize_groupwise, inner_k_tiles, quantize_groupwise

    torch.manual_seed(1)
    weight, x = torch.randn(64, 256), torch.randn(3, 256, dtype=torch.bfloat16)
    codes, scales_and_zeros = quantize_groupwise(weight, 64)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32), inner_k_tiles(256))
    out = torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, 64, scales_and_zeros).float()
    reference = x.float() @ dequantize_groupwise(codes, scales_and_zeros, 64).T
    assert float((out - reference).norm() / reference.norm()) < 0.01


@pytest.mark.parametrize(("width", "group", "tiles"), [(4544, 64, 4), (18176, 128, 8), (576, 64, 4), (96, 32, 2)])
def test_int4_tiling_for_falcon_and_smollm2_widths(width, group, tiles):
    from app.modeling.int4 import group_size_for, inner_k_tiles

    assert (group_size_for(width), inner_k_tiles(width)) == (group, tiles)


def test_int4_refuses_a_width_the_kernel_cannot_take():
    from app.modeling.int4 import group_size_for

    with pytest.raises(ValueError, match="group size"):
        group_size_for(100)


def test_marker_tokens_are_those_that_could_begin_a_stop_string():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from app.generation.local import marker_token_ids

    vocab = {"hello": 0, "<human": 1, "world": 2, "\n": 3, "<unk>": 4}
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
                                   unk_token="<unk>")  # fmt: skip
    assert marker_token_ids(fast) == {1, 3}  # "<unk>" is special: decoded rows never contain its text

    class Slow:  # no Rust backend: decoded one by one
        def __len__(self) -> int:
            return 3

        def batch_decode(self, ids):
            return [["a", "b<", "c\n"][i[0]] for i in ids]

    assert marker_token_ids(Slow()) == {1, 2}


def test_row_stopper_decodes_only_near_a_possible_stop_string():
    import time as _time

    from app.generation.base import GenerationRequest
    from app.generation.local import _RowStopper
    from app.prompt import STOP_STRINGS

    pieces = ["He", " was", " born", ".", "<", "hum", "an", ">:", " again"]

    class Tok:
        decoded = 0

        def decode(self, ids, skip_special_tokens=True):
            Tok.decoded += 1
            return "".join(pieces[i] for i in ids.tolist())

    # row 0: a lone "<" (no stop string follows), 15 plain tokens, then "<human"; row 1: plain text only
    rows = [[4] + [1, 2, 3] * 5 + [4, 5, 6], [0, 1, 2, 3] * 4 + [0, 1, 2]]
    requests = [GenerationRequest("p", 40, _time.monotonic() + 60) for _ in rows]
    stopper = _RowStopper(requests, Tok(), prompt_width=1, markers=frozenset({4}))
    done = None
    for step in range(1, len(rows[0]) + 1):
        done = stopper(torch.tensor([[9] + r[:step] for r in rows]))
        if bool(done[0]):
            break
    assert done is not None and done.tolist() == [True, False]
    assert step == 19  # "<human" (a stop string) is complete
    window = max(len(s) for s in STOP_STRINGS)
    assert Tok.decoded == (1 + window) + 3  # the window after each "<", then steps 17-19; row 1 never
