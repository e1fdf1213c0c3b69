"""Model loading pieces that need no GPU: Falcon's plain linear layers, the 4-bit check, layer freezing."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from app.modeling.base import QuantizationError, frozen_layer_count, plain_linear_layers, verify_4bit
from benchmarks.falcon_shape import FALCON_7B, FALCON_TARGETS

TARGETS = FALCON_TARGETS


def _tiny_falcon():
    from transformers import FalconConfig, FalconForCausalLM

    shape = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = FalconConfig(**{**FALCON_7B, **shape})
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


@pytest.mark.parametrize(
    ("freeze", "layers", "expected"), [(16, 32, 16), (16.0, 32, 16), (0.5, 30, 15), (0.67, 30, 20), (0, 30, 0)]
)
def test_frozen_layer_count(freeze, layers, expected):
    assert frozen_layer_count(freeze, layers) == expected


@pytest.mark.parametrize("freeze", [32, 40, -1])
def test_frozen_layer_count_refuses_impossible_values(freeze):
    with pytest.raises(ValueError):
        frozen_layer_count(freeze, 32)
