"""A decoding bias towards copying the sources faithfully: once an answer is reproducing a source sentence,
the sentence's next token gets a bonus, and at the sentence's end the end-of-answer token does.

The adapter learns to answer by reusing the verified wording it is shown, but a 135M model copies
imperfectly: it drifts into the next sentence of the prompt halfway through ("mixing" two verified answers),
or garbles a name it has rarely seen written ("Tạ Thu Thâu" becomes "Tạ Thành"). A copy mechanism
(pointer-generator networks; here as a fixed bonus on the logits, like prompt-lookup decoding's matching)
keeps a span that the model itself chose to copy going to its end. Nothing is forced: the model decides
whether to copy and what; a token it strongly prefers still wins, and with no match there is no bonus.

Sources are matched on token ids, each sentence tokenized as the model writes an answer (a leading space).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def _longest(
    sentences: Sequence[Sequence[int]], generated: Sequence[int], max_match: int
) -> tuple[int, list[tuple[int, int]]]:
    """The longest match (up to `max_match` tokens) between the end of `generated` and a span of any sentence,
    and where each such span ends: (sentence, its last token), in reading order. (0, []) without one."""
    best, ends = 0, list[tuple[int, int]]()
    n = min(max_match, len(generated))
    for s, sentence in enumerate(sentences):
        for last in range(len(sentence)):
            length = 0
            while length < n and length <= last and sentence[last - length] == generated[-1 - length]:
                length += 1
            if length and length >= best:
                ends = [(s, last)] if length > best else [*ends, (s, last)]
                best = length
    return best, ends


def continuations(
    sentences: Sequence[Sequence[int]], generated: Sequence[int], end: int, max_match: int = 8
) -> tuple[int, set[int]]:
    """The longest match (up to `max_match` tokens) between the end of `generated` and a span of any sentence,
    and the tokens that follow such spans (`end` after a sentence's last token). (0, set()) without one."""
    best, ends = _longest(sentences, generated, max_match)
    return best, {sentences[s][last + 1] if last + 1 < len(sentences[s]) else end for s, last in ends}


def proposal(
    sentences: Sequence[Sequence[int]], generated: Sequence[int], end: int, k: int, max_match: int = 8
) -> list[int]:
    """Up to `k` tokens that would continue the first longest-matching span (then `end` if the sentence ends):
    a draft for prompt-lookup decoding (`app.generation.decoders.cpu.CpuDecoder`). [] without a match."""
    _, ends = _longest(sentences, generated, max_match)
    if not ends or k <= 0:
        return []
    s, last = ends[0]
    return [*sentences[s][last + 1 :], end][:k]


def source_tokens(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Each source sentence as token ids, tokenized as the model writes an answer (with a leading space)."""
    return [tokenizer(" " + s.strip(), add_special_tokens=False)["input_ids"] for s in texts if s.strip()]


class CopyBias:
    """Adds `bias` to the logits of tokens that continue a source span each row is copying.

    A logits processor in transformers' sense (`__call__(input_ids, scores)`), used by `CpuDecoder` and
    `generate`. `sources[i]` are row i's sentences as token ids; `prompt_width` is where answers begin.
    """

    def __init__(
        self, sources: list[list[list[int]]], prompt_width: int, bias: float, end_token: int, max_match: int = 8
    ) -> None:
        self.sources = sources
        self.prompt_width = prompt_width
        self.bias = bias
        self.end_token = end_token
        self.max_match = max_match

    @classmethod
    def for_texts(
        cls, tokenizer: Any, texts: Sequence[Sequence[str]], prompt_width: int, bias: float, max_match: int = 8
    ) -> CopyBias:
        sources = [source_tokens(tokenizer, row) for row in texts]
        return cls(sources, prompt_width, bias, tokenizer.eos_token_id, max_match)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] <= self.prompt_width:
            return scores
        generated = input_ids[:, self.prompt_width :].tolist()
        for row, (sentences, tokens) in enumerate(zip(self.sources, generated, strict=True)):
            _, favoured = continuations(sentences, tokens, self.end_token, self.max_match)
            if favoured:
                scores[row, sorted(favoured)] += self.bias
        return scores
