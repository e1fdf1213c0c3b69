"""Training the relevance gate: a rebuild gives the same bytes on a machine with another number of cores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_a_rebuild_is_byte_identical_whatever_the_number_of_blas_threads(tmp_path: Path) -> None:
    """The solver's sums split over the BLAS threads; unpinned, the weights differed in their last digits."""

    def start(threads: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        command = [sys.executable, "-m", "training.classifier", "train", "--model-dir", str(tmp_path / threads)]
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    builds = {threads: start(threads) for threads in ("1", "2")}  # side by side: twice as soon on two cores
    assert all(build.wait() == 0 for build in builds.values())
    assert (tmp_path / "1" / "gate.joblib").read_bytes() == (tmp_path / "2" / "gate.joblib").read_bytes()


def test_predict_runs_every_stage() -> None:
    """`predict` gives the whole gate's score: where the second stage judges, not the first stage's."""
    from app.kiosk.gate import RelevanceGate
    from training.classifier import predict

    gate = RelevanceGate.load(ROOT / "models/classifier")
    assert gate.review is not None and gate.scorer is not None
    questions = ["giá vé máy bay đi tp hồ chí minh", "vợ ông ấy tên gì", "các mác sinh năm nào", "tea or coffee"]
    reviewed = [q for q in questions if gate.review.applies(gate.scorer(q))]
    assert reviewed, "none of the questions reached the second stage"
    results = predict(gate, [f"{q}\n" for q in questions] + ["  \n"])
    assert [r["question"] for r in results] == questions
    for r in results:
        assert r["relevance"] == round(gate.relevance(r["question"]), 4)
        assert r["related"] == (gate.relevance(r["question"]) >= gate.threshold)
    assert any(round(gate.scorer(q), 4) != round(gate.relevance(q), 4) for q in reviewed)
