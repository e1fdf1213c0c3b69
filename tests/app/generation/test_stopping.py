"""The stopping rule: causes and their order, safe streaming, and the per-row stopper of a batch."""

from __future__ import annotations

import time

import torch

from app.generation.base import GenerationRequest
from app.generation.stopping import RowStopper, TextStream, ended, finish_reason, interrupted, marker_token_ids
from app.prompt import STOP_STRINGS


def test_a_cancelled_request_counts_as_cancelled_before_anything_else():
    request = GenerationRequest("p", 8, time.monotonic() - 1)
    assert interrupted(request) == "deadline"
    request.cancelled.set()
    assert interrupted(request) == "cancelled"
    assert finish_reason(request, 8, stopped=True) == "cancelled"


def test_finish_reasons_of_a_request_that_ran():
    live = GenerationRequest("p", 8, time.monotonic() + 60)
    assert interrupted(live) is None
    assert finish_reason(live, 3, stopped=True) == "stop"
    assert finish_reason(live, 8, stopped=False) == "length"
    late = GenerationRequest("p", 8, time.monotonic() - 1)
    assert finish_reason(late, 8, stopped=True) == "stop"  # it ended on its own before the deadline counted
    assert finish_reason(late, 3, stopped=False) == "deadline"


def test_a_row_ends_at_its_end_token_or_when_the_stopper_says_so():
    ids = torch.tensor([[5, 2], [5, 7], [5, 8]])
    stop = lambda seen: torch.tensor([False, False, True])  # noqa: E731
    assert ended(ids, stop, eos_token_id=2).tolist() == [True, False, True]


def test_text_stream_never_shows_a_turn_marker():
    shown: list[str] = []
    request = GenerationRequest("p", 64, time.monotonic() + 10, on_text=shown.append)
    stream = TextStream(request)
    raw = ""
    for piece in ["He was", " born in", " 1890.", "\n<hu", "man>: what", " next"]:
        raw += piece
        if stream.update(raw):
            break
    stream.flush(raw)
    assert "".join(shown) == "He was born in 1890.\n"
    assert "<" not in "".join(shown)


def test_marker_tokens_are_those_that_could_begin_a_stop_string():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"hello": 0, "<human": 1, "world": 2, "\n": 3, "<unk>": 4}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")), unk_token="<unk>"
    )
    assert marker_token_ids(fast) == {1, 3}  # "<unk>" is special: decoded rows never contain its text

    class Slow:  # no Rust backend: decoded one by one
        def __len__(self) -> int:
            return 3

        def batch_decode(self, ids):
            return [["a", "b<", "c\n"][i[0]] for i in ids]

    assert marker_token_ids(Slow()) == {1, 2}


def test_row_stopper_decodes_only_near_a_possible_stop_string():
    pieces = ["He", " was", " born", ".", "<", "hum", "an", ">:", " again"]

    class Tok:
        decoded = 0

        def decode(self, ids, skip_special_tokens=True):
            Tok.decoded += 1
            return "".join(pieces[i] for i in ids.tolist())

    # row 0: a lone "<" (no stop string follows), 15 plain tokens, then "<human"; row 1: plain text only
    rows = [[4] + [1, 2, 3] * 5 + [4, 5, 6], [0, 1, 2, 3] * 4 + [0, 1, 2]]
    requests = [GenerationRequest("p", 40, time.monotonic() + 60) for _ in rows]
    stopper = RowStopper(requests, Tok(), prompt_width=1, markers=frozenset({4}))
    done = None
    for step in range(1, len(rows[0]) + 1):
        done = stopper(torch.tensor([[9] + r[:step] for r in rows]))
        if bool(done[0]):
            break
    assert done is not None and done.tolist() == [True, False]
    assert step == 19  # "<human" (a stop string) is complete
    window = max(len(s) for s in STOP_STRINGS)
    assert Tok.decoded == (1 + window) + 3  # the window after each "<", then steps 17-19; row 1 never
