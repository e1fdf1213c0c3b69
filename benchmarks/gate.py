"""Latency of the whole relevance gate (both stages) for one question on one CPU core: p50, p95 and p99.

python -m benchmarks.gate [--n 3000]

The questions: the QA test split (English, Vietnamese and French phrasings) and hand-written off-topic ones,
so that the second stage runs as often as it does on such a mix (the share is printed).
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
from training.gate_data import GENERAL_MULTILINGUAL_CSV, HARD_NEGATIVES_CSV, HARD_POSITIVES_CSV, read_questions

TARGET_P99_MS = 15.0


def questions() -> list[str]:
    """Related and off-topic questions interleaved, in a fixed order."""
    related = [p.question for p in qa.read_pairs(qa.TEST_CSV)] + [q for q, _ in read_questions(HARD_POSITIVES_CSV)]
    off_topic = [q for path in (HARD_NEGATIVES_CSV, GENERAL_MULTILINGUAL_CSV) for q, _ in read_questions(path)]
    return [q for pair in zip(related, off_topic, strict=False) for q in pair]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gate", type=Path, default=Path("models/classifier"))
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args(argv)
    gate = RelevanceGate.load(args.gate)
    asked = questions()
    with threadpool_limits(limits=1):
        for q in asked[:50]:
            gate.relevance(q)
        times = []
        for i in range(args.n):
            q = asked[i % len(asked)]
            start = time.perf_counter()
            gate.relevance(q)
            times.append((time.perf_counter() - start) * 1000)
    assert gate.scorer is not None
    reviewed = sum(gate.review.applies(gate.scorer(q)) for q in asked[: args.n]) if gate.review else 0
    times.sort()
    p50, p95, p99 = statistics.median(times), times[int(0.95 * (len(times) - 1))], times[int(0.99 * (len(times) - 1))]
    print(
        f"relevance gate, one question, one core: p50 {p50:.3f} ms, p95 {p95:.3f} ms, p99 {p99:.3f} ms "
        f"({args.n} calls; second stage on {reviewed / min(args.n, len(asked)):.0%} of the questions)"
    )
    print(f"target p99 <= {TARGET_P99_MS:g} ms:", "met" if p99 <= TARGET_P99_MS else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
