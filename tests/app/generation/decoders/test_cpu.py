"""The CPU decoding loop picks the same tokens as transformers' `generate` on a random Llama."""

from __future__ import annotations

import pytest
import torch

from app.generation.decoders.cpu import CpuDecoder, supports
from tests.app.generation.decoders.cases import EOS, PAD, assert_rows_end_at_eos_or_stop, left_padded, never


@pytest.fixture(scope="module")
def llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        tie_word_embeddings=True,
        rope_theta=100000.0,
        bos_token_id=2,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # larger weights than the default init, so that greedy choices are not near-ties
        for p in model.parameters():
            p.mul_(4.0) if p.dim() > 1 else None
    return model


def test_same_tokens_as_transformers_generate_with_left_padding(llama):
    ids, mask = left_padded()
    with torch.inference_mode():
        expected = llama.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False, eos_token_id=-1, pad_token_id=PAD
        )
    ours = CpuDecoder(llama, int8=False).generate(ids, mask, 12, never, eos_token_id=-1, pad_token_id=PAD)
    assert ours.tolist() == expected.tolist()


def test_same_next_token_logits_as_transformers(llama):
    ids, mask = left_padded()
    decoder = CpuDecoder(llama, int8=False)
    with torch.inference_mode():
        expected = llama(input_ids=ids, attention_mask=mask).logits[:, -1]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = [(torch.zeros(3, 2, 7, 16), torch.zeros(3, 2, 7, 16)) for _ in decoder.layers]
        real = mask.bool()
        prefill = (torch.ones(7, 7, dtype=torch.bool).tril() & real[:, None, None, :]) | torch.eye(7, dtype=torch.bool)
        ours = decoder._forward(ids, positions, cache, 0, prefill)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)


def test_rows_end_at_eos_or_when_stop_says_so(llama):
    ids, mask = left_padded()
    decoder = CpuDecoder(llama, int8=False)
    free = decoder.generate(ids, mask, 6, never, eos_token_id=-1, pad_token_id=PAD)[:, 7:].tolist()
    eos = free[0][-1]  # a token row 0 produces: it must end there
    out = decoder.generate(
        ids, mask, 6, lambda seen: torch.tensor([False, seen.shape[1] >= 9, False]), eos_token_id=eos, pad_token_id=PAD
    )[:, 7:].tolist()
    assert_rows_end_at_eos_or_stop(out, free, eos)


def test_int8_decoding_stays_close_to_float(llama):
    ids, mask = left_padded()
    exact = CpuDecoder(llama, int8=False).generate(ids, mask, 8, never, eos_token_id=-1, pad_token_id=PAD)
    int8 = CpuDecoder(llama, int8=True).generate(ids, mask, 8, never, eos_token_id=-1, pad_token_id=PAD)
    assert int8.shape == exact.shape
    assert (int8[:, 7:] == exact[:, 7:]).float().mean() >= 0.5


def test_other_architectures_stay_with_generate(llama):
    from transformers import FalconConfig

    assert supports(llama.config)
    assert not supports(FalconConfig())
    scaled = llama.config.__class__(
        **{
            **llama.config.to_dict(),
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        }
    )
    assert not supports(scaled)
    with pytest.raises(ValueError, match="does not reproduce"):
        CpuDecoder(type("M", (), {"config": FalconConfig()})())


def test_prompts_run_in_float32_even_with_int8_weights(llama):
    """int8 with one activation scale for a whole prompt damaged answers (see app.generation.decoders.cpu._Linear)."""
    ids, mask = left_padded()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    prefill = (causal & mask.bool()[:, None, None, :]) | torch.eye(7, dtype=torch.bool)
    logits = []
    for int8 in (False, True):
        decoder = CpuDecoder(llama, int8=int8)
        cache = [(torch.zeros(3, 2, 8, 16), torch.zeros(3, 2, 8, 16)) for _ in decoder.layers]
        logits.append(decoder._forward(ids, positions, cache, 0, prefill))
    torch.testing.assert_close(logits[1], logits[0])


class _Counting:
    """Wraps a decoder's forward pass to count the passes and the positions they computed."""

    def __init__(self, decoder: CpuDecoder) -> None:
        self.passes, self.positions = 0, 0
        self._forward = decoder._forward
        decoder._forward = self  # type: ignore[method-assign]

    def __call__(self, ids, *args, **kwargs):
        self.passes += 1
        self.positions += ids.shape[1]
        return self._forward(ids, *args, **kwargs)


@pytest.mark.parametrize("drafts", ["right", "wrong", "partly right", "none"])
def test_drafted_decoding_picks_the_tokens_of_plain_greedy_decoding(llama, drafts):
    """Proposed tokens are checked, never trusted: a right draft saves passes, a wrong one changes nothing."""
    ids = torch.tensor([[5, 9, 14, 3, 22, 17, 8]])
    mask = torch.ones_like(ids)
    width, new = ids.shape[1], 14
    plain = CpuDecoder(llama, int8=False).generate(ids, mask, new, never, eos_token_id=-1, pad_token_id=PAD)
    answer = plain[0, width:].tolist()

    def draft(so_far: list[int]) -> list[int]:
        right = answer[len(so_far) : len(so_far) + 4]
        if drafts == "right":
            return right
        if drafts == "partly right":
            return right[:2] + [(t + 1) % 96 for t in right[2:]]
        return [(t + 1) % 96 for t in right] if drafts == "wrong" else []

    decoder = CpuDecoder(llama, int8=False)
    counted = _Counting(decoder)
    out = decoder.generate(ids, mask, new, never, eos_token_id=-1, pad_token_id=PAD, draft=draft)
    assert out.tolist() == plain.tolist()
    if drafts == "right":  # the prompt, then one pass per five tokens: four proposed, one picked after them
        assert counted.passes == 1 + -(-(new - 1) // 5)
    elif drafts in ("wrong", "none"):
        assert counted.passes == new  # one pass per token, as without a draft


def test_drafted_decoding_ends_at_eos_a_stop_or_the_budget(llama):
    ids = torch.tensor([[5, 9, 14, 3, 22, 17, 8]])
    mask = torch.ones_like(ids)
    width = ids.shape[1]
    decoder = CpuDecoder(llama, int8=False)
    free = decoder.generate(ids, mask, 10, never, eos_token_id=-1, pad_token_id=PAD)[0, width:].tolist()

    def draft(so_far: list[int]) -> list[int]:
        return free[len(so_far) : len(so_far) + 8]  # right, and long enough to run past every end

    eos = free[4]
    at_eos = decoder.generate(ids, mask, 10, never, eos_token_id=eos, pad_token_id=PAD, draft=draft)
    assert at_eos[0, width:].tolist() == free[: free.index(eos) + 1]
    stopped = decoder.generate(
        ids,
        mask,
        10,
        lambda seen: torch.tensor([seen.shape[1] >= width + 3]),
        eos_token_id=-1,
        pad_token_id=PAD,
        draft=draft,
    )
    assert stopped[0, width:].tolist() == free[:3]
    budget = decoder.generate(ids, mask, 6, never, eos_token_id=-1, pad_token_id=PAD, draft=draft)
    assert budget[0, width:].tolist() == free[:6]


def test_drafted_int8_decoding_stays_close_to_one_token_steps(llama):
    ids = torch.tensor([[5, 9, 14, 3, 22, 17, 8]])
    mask = torch.ones_like(ids)
    decoder = CpuDecoder(llama, int8=True)
    plain = decoder.generate(ids, mask, 12, never, eos_token_id=-1, pad_token_id=PAD)[0, 7:].tolist()
    drafted = decoder.generate(
        ids,
        mask,
        12,
        never,
        eos_token_id=-1,
        pad_token_id=PAD,
        draft=lambda so_far: plain[len(so_far) : len(so_far) + 4],
    )[0, 7:].tolist()
    assert sum(a == b for a, b in zip(plain, drafted, strict=True)) >= 9
