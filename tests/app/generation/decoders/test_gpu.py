"""The GPU decoding loop picks the same tokens as transformers' `generate` on a random Falcon.

It runs here on the CPU, eagerly (no CUDA graphs); tests/gpu runs it with graphs and 4-bit weights.
"""

from __future__ import annotations

import pytest
import torch

from app.generation.decoders.common import prompt_positions_and_mask
from app.generation.decoders.gpu import GpuDecoder, supports
from benchmarks.falcon_shape import FALCON_7B
from tests.app.generation.decoders.cases import EOS, PAD, assert_rows_end_at_eos_or_stop, left_padded, never


@pytest.fixture(scope="module")
def falcon():
    from transformers import FalconConfig, FalconForCausalLM

    torch.manual_seed(0)
    shape = {"vocab_size": 96, "hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4}
    config = FalconConfig(**{**FALCON_7B, **shape, "bos_token_id": 2, "eos_token_id": EOS, "pad_token_id": PAD})
    model = FalconForCausalLM(config).eval()
    with torch.no_grad():  # larger weights than the default init, so that greedy choices are not near-ties
        for p in model.parameters():
            p.mul_(8.0) if p.dim() > 1 else None
    return model


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_same_tokens_as_transformers_generate_with_left_padding(falcon, chunk):
    ids, mask = left_padded()
    with torch.inference_mode():
        expected = falcon.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False, eos_token_id=-1, pad_token_id=PAD
        )
    decoder = GpuDecoder(falcon, max_batch=4, max_length=32, chunk=chunk)
    ours = decoder.generate(ids, mask, 12, never, eos_token_id=-1, pad_token_id=PAD)
    assert ours.tolist() == expected.tolist()
    # a second, smaller batch on the same decoder: nothing of the first one leaks into it
    alone = decoder.generate(ids[1:2], mask[1:2], 12, never, eos_token_id=-1, pad_token_id=PAD)
    assert alone.tolist() == expected[1:2].tolist()


def test_same_prompt_logits_as_transformers(falcon):
    ids, mask = left_padded()
    decoder = GpuDecoder(falcon, max_batch=4, max_length=32)
    with torch.inference_mode():
        expected = falcon(input_ids=ids, attention_mask=mask).logits[:, -1]
        positions, prefill = prompt_positions_and_mask(mask)
        ours = decoder._forward(ids, positions, 0, 7, prefill)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)


def test_prompt_attention_in_pieces_gives_the_same_tokens(falcon, monkeypatch):
    ids, mask = left_padded()
    decoder = GpuDecoder(falcon, max_batch=4, max_length=32)
    whole = decoder.generate(ids, mask, 6, never, eos_token_id=-1, pad_token_id=PAD)
    monkeypatch.setattr("app.generation.decoders.gpu.ATTENTION_BYTES", 1)  # one row at a time
    assert decoder.generate(ids, mask, 6, never, eos_token_id=-1, pad_token_id=PAD).tolist() == whole.tolist()


def test_rows_end_at_eos_or_when_stop_says_so(falcon):
    ids, mask = left_padded()
    decoder = GpuDecoder(falcon, max_batch=4, max_length=32, chunk=4)
    free = decoder.generate(ids, mask, 6, never, eos_token_id=-1, pad_token_id=PAD)[:, 7:].tolist()
    eos = free[0][2]  # a token row 0 produces: it must end there
    calls = []

    def stop(seen: torch.Tensor) -> torch.Tensor:
        calls.append(seen.shape[1])
        return torch.tensor([False, seen.shape[1] >= 9, False])

    out = decoder.generate(ids, mask, 6, stop, eos_token_id=eos, pad_token_id=PAD)[:, 7:].tolist()
    assert calls == list(range(8, 8 + len(calls)))  # after every token, in order, although synced every 4
    assert_rows_end_at_eos_or_stop(out, free, eos)


def test_requests_that_do_not_fit_are_refused(falcon):
    ids, mask = left_padded()
    decoder = GpuDecoder(falcon, max_batch=2, max_length=16)
    assert not decoder.fits(7, 12, 1) and not decoder.fits(7, 4, 3) and decoder.fits(7, 9, 2)
    with pytest.raises(ValueError, match="do not fit"):
        decoder.generate(ids, mask, 12, never, eos_token_id=-1, pad_token_id=PAD)


def test_only_the_falcon_variant_it_reproduces(falcon):
    from transformers import FalconConfig, LlamaConfig

    assert supports(falcon.config)
    assert not supports(FalconConfig(new_decoder_architecture=True))  # Falcon-40B's layout
    assert not supports(FalconConfig(alibi=True, multi_query=True, parallel_attn=True, new_decoder_architecture=False))
    assert not supports(LlamaConfig())
    with pytest.raises(ValueError, match="does not reproduce"):
        GpuDecoder(type("M", (), {"config": LlamaConfig()})(), max_batch=4, max_length=32)


def test_warmup_runs_the_largest_request_the_cache_allows(falcon, monkeypatch):
    decoder = GpuDecoder(falcon, max_batch=4, max_length=24)
    seen = []
    original = decoder.generate
    monkeypatch.setattr(decoder, "generate", lambda ids, *a, **k: seen.append(ids.shape) or original(ids, *a, **k))
    decoder.warmup(PAD)
    assert seen == [(4, 16)] and set(decoder._steps) == {1, 2, 4}
    assert not decoder.fits(7, 0, 1) and not decoder.fits(7, 4, 0)


def test_prompts_run_a_few_rows_at_a_time_give_the_same_tokens(falcon, monkeypatch):
    ids, mask = left_padded()
    decoder = GpuDecoder(falcon, max_batch=4, max_length=32)
    whole = decoder.generate(ids, mask, 6, never, eos_token_id=-1, pad_token_id=PAD)
    monkeypatch.setattr("app.generation.decoders.gpu.PREFILL_TOKENS", 7)  # one row of 7 tokens at a time
    assert decoder.generate(ids, mask, 6, never, eos_token_id=-1, pad_token_id=PAD).tolist() == whole.tolist()


def test_a_logits_processor_is_refused_not_dropped(falcon):
    """The loop cannot apply the copy bias: asked to, it says so instead of decoding without it."""
    ids, mask = left_padded()
    decoder = GpuDecoder(falcon, max_batch=4, max_length=32)
    with pytest.raises(ValueError, match="no logits processor"):
        decoder.generate(ids, mask, 4, never, eos_token_id=-1, pad_token_id=PAD, process=lambda ids, s: s)
