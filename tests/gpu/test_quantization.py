"""On a CUDA GPU with bitsandbytes (the device machine): 4-bit Falcon is real, and the check catches the trap."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
import torch

from benchmarks.falcon_shape import FALCON_7B, FALCON_TARGETS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
TARGETS = FALCON_TARGETS
SHAPE = {**FALCON_7B, "vocab_size": 1024, "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4}


@pytest.fixture(scope="module")
def falcon_dir(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import FalconConfig, FalconForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("falcon")
    FalconForCausalLM(FalconConfig(**SHAPE)).to(torch.bfloat16).save_pretrained(path)
    vocab = {f"w{i}": i for i in range(1000)} | {"<unk>": 1000, "<pad>": 1001, "</s>": 1002}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    ).save_pretrained(path)
    return path


def test_falcon_loads_in_real_4bit(falcon_dir):
    import bitsandbytes as bnb

    from app.modeling.base import load_base

    model, _ = load_base(str(falcon_dir), quantize_4bit=True, targets=TARGETS)
    n = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    assert n >= len(TARGETS) * SHAPE["num_hidden_layers"]


def test_without_the_fix_the_check_fails_loudly(falcon_dir, monkeypatch):
    from app.modeling import base as modeling

    monkeypatch.setattr(modeling, "plain_linear_layers", lambda model_type: contextlib.nullcontext())
    with pytest.raises(modeling.QuantizationError, match="not bitsandbytes Linear4bit"):
        modeling.load_base(str(falcon_dir), quantize_4bit=True, targets=TARGETS)


def test_serving_path_merges_compiles_and_generates(falcon_dir):
    from app.generation.base import GenerationRequest
    from app.generation.local import LocalGenerator
    from app.modeling.base import load_base, prepare_for_serving
    from benchmarks.falcon_shape import random_lora

    base, tokenizer = load_base(str(falcon_dir), quantize_4bit=True, targets=TARGETS)
    model = prepare_for_serving(random_lora(base, r=8), merge=True, compile_decoding=True)
    generator = LocalGenerator(model, tokenizer)
    requests = [GenerationRequest("w1 w2 w3", 8, time.monotonic() + 120) for _ in range(3)]
    results = generator.generate_batch(requests)
    assert [r.tokens for r in results] == [8, 8, 8] or all(0 < r.tokens <= 8 for r in results)


def test_int4_linear_multiplies_by_the_weight_its_codes_stand_for():
    from app.modeling.int4 import Int4Linear, dequantize_groupwise, quantize_groupwise

    torch.manual_seed(0)
    weight = torch.randn(384, 256, device="cuda")
    layer = Int4Linear(weight)
    x = torch.randn(5, 256, device="cuda", dtype=torch.bfloat16)
    reference = x.float() @ dequantize_groupwise(*quantize_groupwise(weight, layer.group_size), layer.group_size).T
    error = (layer(x).float() - reference).norm() / reference.norm()
    assert error < 0.01  # bf16 rounding only: a wrong nibble order or scale layout gives ~1


def test_serving_path_with_the_int4_kernel_keeps_the_adapter(falcon_dir):
    from app.generation.base import GenerationRequest
    from app.generation.local import LocalGenerator
    from app.modeling.base import is_4bit, load_base, prepare_for_serving
    from app.modeling.int4 import Int4Linear
    from benchmarks.falcon_shape import random_lora

    base, tokenizer = load_base(str(falcon_dir), quantize_4bit=True, targets=TARGETS)
    model = random_lora(base, r=8)
    ids = torch.randint(0, 1000, (1, 12), device="cuda")
    with torch.inference_mode():
        unmerged = model(input_ids=ids).logits.float()
        model.disable_adapter_layers()
        without_adapter = model(input_ids=ids).logits.float()
        model.enable_adapter_layers()
    model = prepare_for_serving(model, merge=True, compile_decoding=True, int4_kernel=True)
    assert not is_4bit(model)
    assert sum(isinstance(m, Int4Linear) for m in model.modules()) == 4 * SHAPE["num_hidden_layers"]
    with torch.inference_mode():
        served = model(input_ids=ids).logits.float()
    error = float((served - unmerged).norm() / unmerged.norm())
    adapter_effect = float((without_adapter - unmerged).norm() / unmerged.norm())
    assert error < 0.5 * adapter_effect, (error, adapter_effect)  # the adapter is in the served weights
    results = LocalGenerator(model, tokenizer).generate_batch(
        [GenerationRequest("w1 w2 w3", 8, time.monotonic() + 120) for _ in range(3)]
    )
    assert all(0 < r.tokens <= 8 for r in results)


def test_gpu_decoding_loop_replays_what_it_computes_eagerly(falcon_dir):
    from app.generation.base import GenerationRequest
    from app.generation.config import GeneratorConfig
    from app.generation.decoders.common import prompt_positions_and_mask
    from app.generation.decoders.gpu import GpuDecoder
    from app.generation.local import LocalGenerator
    from app.modeling.base import load_base
    from benchmarks.falcon_shape import random_lora

    base, tokenizer = load_base(str(falcon_dir), quantize_4bit=True, targets=TARGETS)
    generator = LocalGenerator.serving(
        random_lora(base, r=8), tokenizer, GeneratorConfig(max_batch_size=4, gpu_max_length=64, copy_bias=0.0)
    )
    assert isinstance(generator.decoder, GpuDecoder) and generator.decoder.graphs
    model, pad = generator.model, tokenizer.pad_token_id
    torch.manual_seed(1)
    ids = torch.randint(3, 1000, (3, 10), device="cuda")
    ids[0, :3] = pad
    mask = (ids != pad).long()

    def never(seen: torch.Tensor) -> torch.Tensor:
        return torch.zeros(seen.shape[0], dtype=torch.bool)

    eager = GpuDecoder(model, max_batch=4, max_length=64, graphs=False)
    expected = eager.generate(ids, mask, 16, never, eos_token_id=-1, pad_token_id=pad)
    assert generator.decoder.generate(ids, mask, 16, never, eos_token_id=-1, pad_token_id=pad).tolist() == (
        expected.tolist()
    )
    # one row alone replays the graph of batch size 1
    alone = generator.decoder.generate(ids[1:2], mask[1:2], 16, never, eos_token_id=-1, pad_token_id=pad)
    assert alone.tolist() == eager.generate(ids[1:2], mask[1:2], 16, never, eos_token_id=-1, pad_token_id=pad).tolist()
    # the prompt's logits are transformers' (bf16: up to rounding)
    with torch.inference_mode():
        theirs = model(input_ids=ids, attention_mask=mask).logits[:, -1].float()
        positions, prefill = prompt_positions_and_mask(mask)
        ours = eager._forward(ids, positions, 0, 10, prefill).float()
    assert float((ours - theirs).norm() / theirs.norm()) < 0.02
    results = generator.generate_batch([GenerationRequest("w1 w2 w3", 8, time.monotonic() + 120) for _ in range(3)])
    assert all(0 < r.tokens <= 8 for r in results)
    generator.warmup()  # graphs again (kept), then 4 prompts that fill the cache
