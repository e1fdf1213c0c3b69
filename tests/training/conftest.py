"""Fixtures shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from training import qa


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 training pairs of 12 answers, the first 4 asked twice: several questions share an answer, as in the real
    split (which keeps an answer's questions together, so the file's first rows would hold only a few answers)."""
    path = tmp_path_factory.mktemp("qa") / "train.csv"
    by_answer: dict[str, list[qa.QAPair]] = {}
    for pair in qa.read_pairs(ROOT / "data/qa/train.csv"):
        by_answer.setdefault(pair.answer, []).append(pair)
    asked_twice = [pairs for pairs in by_answer.values() if len(pairs) >= 2][:12]
    qa.write_pairs(path, [p for i, pairs in enumerate(asked_twice) for p in pairs[: 2 if i < 4 else 1]])
    return path
