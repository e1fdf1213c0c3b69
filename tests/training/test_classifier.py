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
    """The solver's sums split over the BLAS threads; unpinned, the weights differed in their last digits.

    The first stage only (the logistic regression is what BLAS computes; the second stage's trees are not): the
    shipped preset with `review: false`, so that the two builds take ~20 s instead of ~80 s.
    """
    preset = (ROOT / "training/configs/gate.yaml").read_text(encoding="utf-8")
    assert "review: true" in preset
    config = tmp_path / "gate.yaml"
    config.write_text(preset.replace("review: true", "review: false"), encoding="utf-8")

    def start(threads: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        command = [sys.executable, "-m", "training.classifier", "train", "--config", str(config)]
        command += ["--model-dir", str(tmp_path / threads)]
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


def test_a_section_written_by_another_step_survives_a_rewrite_of_the_gate_report(tmp_path):
    from training.gate_report import kept_block, replace_block

    report = tmp_path / "classifier.md"
    report.write_text("# Gate\n\n## Per language and kind\n\n| a |\n\n## Errors\n\nnone\n", encoding="utf-8")
    assert kept_block(report) == []
    replace_block(report, ["## Fresh", "", "| 0.95 |"])
    text = report.read_text(encoding="utf-8")
    assert text.index("## Fresh") < text.index("## Errors")  # after the per-language tables
    replace_block(report, ["## Fresh", "", "| 0.97 |"])  # replaced, not added twice
    assert report.read_text(encoding="utf-8").count("## Fresh") == 1 and "0.97" in report.read_text()
    block = kept_block(report)
    assert block[1:4] == ["## Fresh", "", "| 0.97 |"] and block[-1] == ""
