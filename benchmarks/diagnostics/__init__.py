"""One-off GPU diagnostics whose findings are recorded in benchmarks/README.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def microseconds(fn: Callable[[], Any], iters: int = 200, warmup: int = 10) -> float:
    """Mean time of one call on the GPU's clock (CUDA events), after `warmup` calls."""
    import torch

    for _ in range(warmup):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return round(start.elapsed_time(end) / iters * 1000, 1)
