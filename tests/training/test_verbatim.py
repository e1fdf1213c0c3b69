"""Choosing when a verified answer is given as written: the lowest band from which it is never worse."""

from __future__ import annotations

from pathlib import Path

from app.kiosk.verified import Phrasing, read_phrasings
from training.verbatim import Asked, choose, report, write_kept


def _asked(score: float, right: bool) -> Asked:
    return Asked("en", score, "generated", right, False)


def test_the_lowest_band_from_which_the_written_answer_is_never_worse_is_chosen():
    # bands 0.6+ and 0.5–0.55: as written wins; 0.45–0.5: the model wins; so written from 0.5 on
    model = [_asked(0.65, False), _asked(0.52, False), _asked(0.47, True), _asked(0.36, False)]
    written = [_asked(0.65, True), _asked(0.52, True), _asked(0.47, False), _asked(0.36, True)]
    assert choose(model, written) == 0.5
    assert choose(written, model) == 1.0  # the model better in the top band: never as written
    assert choose(model, model) == 0.35  # never worse: as written from the lowest band that holds questions


def test_the_report_counts_only_what_the_model_wrote_per_band(tmp_path: Path):
    model = [_asked(0.52, False), Asked("vi", 0.52, "curated", True, False)]
    written = [_asked(0.52, True), Asked("vi", 0.52, "curated", True, False)]
    text = report(model, written, 0.5)
    assert "| 0.5 | 1 | 0 | 1 |" in text and "KIOSK_VERBATIM_FROM=0.5" in text


def test_kept_phrasings_round_trip_as_a_phrasings_folder(tmp_path: Path):
    kept = [Phrasing("He left in 1911.", "fr", "il est parti quand, « vraiment » ?")]
    assert read_phrasings(write_kept(kept, tmp_path)) == kept
