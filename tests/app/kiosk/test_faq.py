"""The staff FAQ's fit, kept on disk between restarts: reused when intact, fitted again otherwise."""

from __future__ import annotations

import io
import sys
import types

import joblib

from app.kiosk import faq as faq_module
from tests.conftest import ROOT

PATH = ROOT / "data/faq.yaml"
NEGATIVES = ["when was he born", "who was his father", "best pho in saigon"]


def test_faq_fit_is_cached_on_disk_and_a_damaged_cache_is_refitted(tmp_path):
    faq_module._CACHE.clear()
    first = faq_module.load_faq(PATH, NEGATIVES, 0.5, tmp_path)
    cached = list(tmp_path.glob("faq-*.joblib"))
    assert len(cached) == 1
    faq_module._CACHE.clear()
    again = faq_module.load_faq(PATH, NEGATIVES, 0.5, tmp_path)
    assert again.best("where are the toilets?").entry.id == first.best("where are the toilets?").entry.id
    cached[0].write_bytes(b"not a joblib file")  # damaged: must be refitted, never loaded
    faq_module._CACHE.clear()
    refit = faq_module.load_faq(PATH, NEGATIVES, 0.5, tmp_path)
    assert refit.best("where are the toilets?").entry.id == "toilets"


def test_a_cache_whose_classes_moved_is_fitted_again(tmp_path):
    """A fit pickled by a version whose FAQ class lived in another module (app.faq before app.kiosk.faq) is a
    miss, not a ModuleNotFoundError at start-up."""
    faq_module._CACHE.clear()
    faq_module.load_faq(PATH, NEGATIVES, 0.5, tmp_path)
    cached = next(tmp_path.glob("faq-*.joblib"))
    gone = types.ModuleType("app.moved_away")
    stale = type("FAQ", (), {"__module__": "app.moved_away"})
    gone.FAQ = stale  # type: ignore[attr-defined]
    sys.modules["app.moved_away"] = gone
    try:
        buf = io.BytesIO()
        joblib.dump(stale(), buf)
    finally:
        del sys.modules["app.moved_away"]
    cached.write_bytes(buf.getvalue())
    cached.with_suffix(".sha256").write_text(faq_module.sha256_file(cached), encoding="utf-8")  # intact, valid hash
    faq_module._CACHE.clear()
    refit = faq_module.load_faq(PATH, NEGATIVES, 0.5, tmp_path)
    assert isinstance(refit, faq_module.FAQ) and refit.best("where are the toilets?").entry.id == "toilets"
