"""Latency of the relevance gate for one question on one CPU core: p50 and p99.

python -m benchmarks.gate [--n 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from app.kiosk.gate import RelevanceGate
from training import qa


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gate", type=Path, default=Path("models/classifier"))
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args(argv)
    gate = RelevanceGate.load(args.gate)
    questions = [p.question for p in qa.read_pairs(qa.TEST_CSV)] + ["best pho in saigon?", "how did lenin die"]
    with threadpool_limits(limits=1):
        for q in questions[:50]:
            gate.relevance(q)
        times = []
        for i in range(args.n):
            q = questions[i % len(questions)]
            start = time.perf_counter()
            gate.relevance(q)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p50, p99 = statistics.median(times), times[int(0.99 * (len(times) - 1))]
    print(f"relevance gate, one question, one core: p50 {p50:.3f} ms, p99 {p99:.3f} ms ({args.n} calls)")
    print("target p99 <= 2 ms:", "met" if p99 <= 2 else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
