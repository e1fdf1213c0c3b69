"""The copy bias: which tokens it favours, and that decoding with it finishes a copied sentence and stops."""

from __future__ import annotations

import pytest
import torch

from app.generation.copying import CopyBias, continuations, proposal
from app.generation.decoders.cpu import CpuDecoder
from tests.app.generation.decoders.cases import EOS, PAD, left_padded, never

END = 99


def test_continuations_follow_the_longest_match():
    source = [[5, 6, 7, 8, 6, 9]]
    assert continuations(source, [1, 5, 6], END) == (2, {7})  # "5 6" beats the shorter match of "6" alone
    assert continuations(source, [3, 6], END) == (1, {7, 9})  # "6" twice: both continuations
    assert continuations(source, [8, 6, 9], END) == (3, {END})  # copied to its end: the answer may end
    assert continuations(source, [4, 4], END) == (0, set())
    assert continuations(source, [], END) == (0, set())
    assert continuations(source, [5, 6, 7, 8], END, max_match=2) == (2, {6})
    # across sentences, the longest match wins too; a sentence's end is not continued into the next one
    assert continuations([[1, 2, 3], [9, 2, 4]], [9, 2], END) == (2, {4})
    assert continuations([[1, 2, 3], [9, 2, 4]], [7, 2], END) == (1, {3, 4})
    assert continuations([[1, 2], [3, 4]], [1, 2], END) == (2, {END})


def test_proposal_continues_the_first_longest_match_up_to_the_sentence_end():
    sources = [[5, 6, 7, 8, 6, 9], [1, 2, 3]]
    assert proposal(sources, [4, 5, 6], END, k=3) == [7, 8, 6]  # after the longest match, "5 6"
    assert proposal(sources, [8, 6], END, k=5) == [9, END]  # the sentence ends: the answer may end too
    assert proposal(sources, [6], END, k=2) == [7, 8]  # "6" twice: the first in reading order
    assert proposal(sources, [2], END, k=4) == [3, END]
    assert proposal(sources, [4], END, k=4) == []  # no match, no draft
    assert proposal(sources, [5, 6], END, k=0) == []


def test_bias_goes_to_the_continuation_of_each_rows_own_sources():
    bias = CopyBias([[[10, 11, 12]], [[20, 21], [30, 31]], []], prompt_width=2, bias=3.0, end_token=END)
    ids = torch.tensor([[0, 0, 10], [0, 0, 30], [0, 0, 10]])
    scores = bias(ids, torch.zeros(3, 100))
    assert scores[0].nonzero().flatten().tolist() == [11] and scores[0, 11] == 3.0
    assert scores[1].nonzero().flatten().tolist() == [31]
    assert not scores[2].any()  # no sources: nothing changes
    untouched = bias(ids[:, :2], torch.zeros(3, 100))  # nothing generated yet: nothing to continue
    assert not untouched.any()


@pytest.mark.parametrize("loop", ["cpu_decoder", "generate"])
def test_a_strong_bias_copies_the_started_sentence_to_its_end_then_ends(llama, loop):
    ids, mask = left_padded()
    decoder = CpuDecoder(llama, int8=False)
    free = decoder.generate(ids, mask, 8, never, eos_token_id=-1, pad_token_id=PAD)[:, ids.shape[1] :]
    # A source sentence for each row that starts with the token the model picks first, then goes elsewhere.
    sources = [[[int(row[0]), 60, 61, 62]] for row in free]
    assert all(int(row[1]) != 60 for row in free)  # unbiased, the model would not copy it
    copying = CopyBias(sources, ids.shape[1], bias=1e4, end_token=EOS)
    if loop == "cpu_decoder":
        out = decoder.generate(ids, mask, 8, never, eos_token_id=EOS, pad_token_id=PAD, process=copying)
    else:
        with torch.inference_mode():
            out = llama.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=8,
                do_sample=False,
                logits_processor=[copying],
                eos_token_id=EOS,
                pad_token_id=PAD,
            )
    for row, source in zip(out[:, ids.shape[1] :].tolist(), sources, strict=True):
        assert row[:5] == source[0] + [EOS]


def test_without_sources_or_bias_decoding_is_unchanged(llama):
    ids, mask = left_padded()
    decoder = CpuDecoder(llama, int8=False)
    plain = decoder.generate(ids, mask, 6, never, eos_token_id=-1, pad_token_id=PAD)
    none = CopyBias([[], [], []], ids.shape[1], bias=1e4, end_token=EOS)
    zero = CopyBias([[[5, 6, 7]]] * 3, ids.shape[1], bias=0.0, end_token=EOS)
    for process in (none, zero):
        out = decoder.generate(ids, mask, 6, never, eos_token_id=-1, pad_token_id=PAD, process=process)
        assert out.tolist() == plain.tolist()


@pytest.mark.parametrize("copy_bias", [0.0, 3.0])
def test_the_generator_drafts_from_a_lone_requests_sources_and_answers_as_without(llama, tokenizer, copy_bias):
    """Prompt lookup is wired for one request with sources (not for batches), proposes the copied sentence's
    next tokens, and leaves a float32 answer as it was."""
    import time

    from app.generation.base import GenerationRequest
    from app.generation.local import LocalGenerator

    tokenizer = _word_tokenizer()
    decoder = CpuDecoder(llama, int8=False)
    drafts: list[object] = []
    generate = decoder.generate

    def spy(*args, **kwargs):
        drafts.append(kwargs.get("draft"))
        return generate(*args, **kwargs)

    decoder.generate = spy  # type: ignore[method-assign]
    source = "w10 w11 w12 w13 w14 w15"
    request = GenerationRequest("w3 w4 w5 w6", 10, time.monotonic() + 60, copy_from=(source,))
    answers = {}
    for k in (0, 4):
        generator = LocalGenerator(llama, tokenizer, decoder, copy_bias=copy_bias, draft_tokens=k)
        answers[k] = generator.generate_batch([request])[0].text
        generator.generate_batch([request, request])  # a batch keeps one-token steps
    assert answers[4] == answers[0]
    assert drafts[0] is None and drafts[1] is None and drafts[3] is None
    draft = drafts[2]
    assert callable(draft)
    w = tokenizer.convert_tokens_to_ids(source.split())  # w10 ... w15
    assert list(draft([7, w[0], w[1]])) == w[2:6]  # the source's next 4 tokens
    assert list(draft(w[4:6])) == [EOS]  # copied to its end: the answer may end
    assert list(draft([90])) == []


def test_the_generator_counts_each_rows_prompt_tokens_and_any_text_without_touching_the_workers_tokenizer(llama):
    import time

    from app.generation.base import GenerationRequest
    from app.generation.local import LocalGenerator

    generator = LocalGenerator(llama, _word_tokenizer(), CpuDecoder(llama, int8=False))
    long, short = (GenerationRequest(p, 4, time.monotonic() + 60) for p in ("w3 w4 w5 w6 w7", "w3 w4"))
    assert [r.prompt_tokens for r in generator.generate_batch([long, short])] == [5, 2]  # padding not counted
    # Request threads count while the worker thread pads a batch with its tokenizer: were they to share it,
    # counting would switch the padding off under the worker (measured: 1 batch in 300 failed to stack).
    backend = generator.tokenizer.backend_tokenizer
    backend.enable_padding(pad_id=0, pad_token="<pad>")
    assert generator.count_tokens("w1 w2 w3") == 3
    assert backend.padding is not None


def _word_tokenizer():
    """One token per word w0..w92, with padding, end-of-answer and unknown tokens (ids 0, 1, 2)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<eos>", "<unk>", *[f"w{i}" for i in range(93)]]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>")
