"""Inputs shared by the tests of the CPU and GPU decoding loops: left-padded prompts, a `stop` that never stops."""

from __future__ import annotations

import torch

EOS, PAD = 1, 0


def never(ids: torch.Tensor) -> torch.Tensor:
    return torch.zeros(ids.shape[0], dtype=torch.bool)


def left_padded() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[PAD, PAD, PAD, 5, 9, 14, 3], [7, 8, 9, 10, 11, 12, 13], [PAD, 40, 41, 42, 43, 44, 45]])
    return ids, (ids != PAD).long()
