"""Phrasings and Vietnamese answers: every answer covered, numbers and Vietnamese names kept, no duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import multilingual

ANSWER = "Hồ Chí Minh was born on 19 May 1890 in Kim Liên."


@pytest.fixture()
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "phrasings").mkdir()
    (tmp_path / "vi").mkdir()
    monkeypatch.setattr(multilingual, "PHRASINGS_DIR", tmp_path / "phrasings")
    monkeypatch.setattr(multilingual, "VI_DIR", tmp_path / "vi")
    return tmp_path


def _write(files: Path, phrasings: list[tuple[str, str]], vi: str) -> None:
    rows = "".join(f'"{ANSWER}",{lang},"{q}"\n' for lang, q in phrasings)
    (files / "phrasings" / "early-life.csv").write_text("answer,language,question\n" + rows, encoding="utf-8")
    (files / "vi" / "early-life.csv").write_text(f'answer,answer_vi\n"{ANSWER}","{vi}"\n', encoding="utf-8")


GOOD = [("en", f"when born {i}") for i in range(4)] + [("vi", f"bác sinh năm nào {i}") for i in range(3)]
GOOD += [("fr", f"il est né quand {i}") for i in range(3)]


def test_complete_files_pass(files: Path) -> None:
    _write(files, GOOD, "Hồ Chí Minh sinh ngày 19 tháng 5 năm 1890 ở Kim Liên.")
    assert multilingual.check("early-life", {ANSWER}, set()) == []


def test_each_rule_is_enforced(files: Path) -> None:
    _write(files, [*GOOD[:8], ("de", "wann geboren"), ("en", "when born 0")], "Bác Hồ sinh năm 1891 ở Kim Lien.")
    problems = " | ".join(p for _, _, p in multilingual.check("early-life", {ANSWER, "Another answer."}, set()))
    assert "language must be one of" in problems and "duplicate question" in problems
    assert "numbers of the English answer missing from the Vietnamese: 1890, 19" in problems
    assert "Vietnamese names of the English answer missing: Chí, Liên" in problems
    assert "0 phrasings (< 10) for 'Another answer.'" in problems and "no Vietnamese version of 'Another" in problems


def test_a_phrasing_of_an_unknown_answer_is_refused(files: Path) -> None:
    _write(files, GOOD, "Hồ Chí Minh sinh ngày 19 tháng 5 năm 1890 ở Kim Liên.")
    assert any(
        "not one of the topic's verified answers" in p for _, _, p in multilingual.check("early-life", set(), set())
    )


def test_a_vietnamese_verdict_the_english_answer_does_not_give_is_refused(files: Path) -> None:
    _write(files, GOOD, "Có. Hồ Chí Minh sinh ngày 19 tháng 5 năm 1890 ở Kim Liên.")
    problems = " | ".join(p for _, _, p in multilingual.check("early-life", {ANSWER}, set()))
    assert "opens with a verdict (Có/Không) that the English one does not give" in problems
