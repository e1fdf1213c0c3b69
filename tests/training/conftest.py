"""Fixtures shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 training pairs (7 answers): several questions share an answer, as in the real split."""
    path = tmp_path_factory.mktemp("qa") / "train.csv"
    lines = (ROOT / "data/qa/train.csv").read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:17]) + "\n", encoding="utf-8")
    return path
