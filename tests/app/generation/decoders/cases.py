"""Inputs shared by the tests of the CPU and GPU decoding loops: left-padded prompts, a `stop` that never stops."""

from __future__ import annotations

import torch

EOS, PAD = 1, 0


def never(ids: torch.Tensor) -> torch.Tensor:
    return torch.zeros(ids.shape[0], dtype=torch.bool)


def left_padded() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[PAD, PAD, PAD, 5, 9, 14, 3], [7, 8, 9, 10, 11, 12, 13], [PAD, 40, 41, 42, 43, 44, 45]])
    return ids, (ids != PAD).long()


def assert_rows_end_at_eos_or_stop(out: list[list[int]], free: list[list[int]], eos: int) -> None:
    """`out`: the new tokens with `eos` as end of answer and a `stop` that ends row 1 after two new tokens;
    `free`: the same prompts' tokens with neither. Each row matches `free` up to its end, then pads."""
    for row, (ours, unstopped) in enumerate(zip(out, free, strict=True)):
        end = unstopped.index(eos) + 1 if eos in unstopped else len(unstopped)
        if row == 1:
            end = min(end, 2)
        assert ours[:end] == unstopped[:end]
        assert set(ours[end:]) <= {PAD}
