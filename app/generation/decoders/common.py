"""What the decoding loops share: the interface the local generator calls, prompt masks, and transformers'
`generate` behind that interface for every model without a loop of its own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

Stop = Callable[[torch.Tensor], torch.Tensor]  # (ids so far) -> one bool per row: done (app.generation.stopping)
LogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (ids so far, logits) -> logits
Drafter = Callable[[list[int]], Sequence[int]]  # (a row's new ids so far) -> the tokens proposed to follow


class Decoder(Protocol):
    """Greedy continuation of left-padded prompts, `generate`-style: prompt + new ids, padding after a row ends."""

    applies_processor: bool  # takes a logits processor (`process`: the copy bias)
    drafts: bool  # checks proposed tokens (`draft`: prompt-lookup decoding)

    def fits(self, width: int, max_new_tokens: int, rows: int) -> bool:
        """Whether a batch of `rows` prompts of `width` tokens, plus `max_new_tokens`, can be decoded here."""
        ...

    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        max_new_tokens: int,
        stop: Stop,
        *,
        eos_token_id: int,
        pad_token_id: int,
        process: LogitsProcessor | None = None,
        draft: Drafter | None = None,
    ) -> torch.Tensor: ...

    def warmup(self, pad_token_id: int) -> None:
        """Prepare for serving (capture graphs, run the largest request); nothing for most loops."""
        ...


def prompt_positions_and_mask(attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For left-padded prompts: each token's position (padding not counted) and which prompt tokens each
    one attends to, [B, T, T] (causal, real tokens only; a padding position attends to itself, so that no
    row of the mask is empty, which would give NaN)."""
    width = attention_mask.shape[1]
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    causal = torch.ones(width, width, dtype=torch.bool, device=attention_mask.device).tril()
    eye = torch.eye(width, dtype=torch.bool, device=attention_mask.device)
    return positions, (causal & attention_mask.bool()[:, None, :]) | eye


class TransformersDecoder:
    """transformers' `generate`, greedy: models without a loop of their own, and batches too large for the GPU
    loop's cache. On CUDA the model may have been prepared for a static cache and compiled decoding."""

    applies_processor = True
    drafts = False

    def __init__(self, model: Any) -> None:
        self.model = model

    def fits(self, width: int, max_new_tokens: int, rows: int) -> bool:
        return True

    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        max_new_tokens: int,
        stop: Stop,
        *,
        eos_token_id: int,
        pad_token_id: int,
        process: LogitsProcessor | None = None,
        draft: Drafter | None = None,
    ) -> torch.Tensor:
        if draft is not None:
            raise ValueError("transformers' generate checks no drafts here")
        return self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            stopping_criteria=[stop],
            logits_processor=[process] if process else None,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        )

    def warmup(self, pad_token_id: int) -> None:
        pass
