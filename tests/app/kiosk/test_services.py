"""Start-up: the FAQ matcher fitted in a process of its own."""

from __future__ import annotations

import signal

import pytest

from app.kiosk import faq as faq_module
from app.kiosk import services
from app.kiosk.services import faq_fit_aside
from tests.app.conftest import make_settings

NEGATIVES = ["when was he born", "who was his father", "best pho in saigon", "Bác Hồ sinh năm nào"]
QUESTIONS = ["where are the toilets?", "how much is a ticket", "when did he die", "giờ mở cửa", "can I see his body?"]


def test_the_faq_fitted_aside_is_the_one_fitted_here(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, cache_dir=tmp_path / "cache")
    faq_module._CACHE.clear()
    with faq_fit_aside(settings, NEGATIVES) as child:
        assert child is not None and child.wait() == 0
    assert faq_module.is_cached(settings.faq_file, NEGATIVES, settings.cache_dir)

    def not_here(*args: object) -> None:
        pytest.fail("fitted again instead of read from the cache")

    monkeypatch.setattr(faq_module.FAQ, "__init__", not_here)
    aside = faq_module.load_faq(settings.faq_file, NEGATIVES, 0.5, settings.cache_dir)
    monkeypatch.undo()
    faq_module._CACHE.clear()
    here = faq_module.load_faq(settings.faq_file, NEGATIVES, 0.5)
    assert [aside.best(q) for q in QUESTIONS] == [here.best(q) for q in QUESTIONS]  # entries and scores, exactly
    with faq_fit_aside(settings, NEGATIVES) as child:
        assert child is None  # cached: no process


def test_a_start_up_that_fails_ends_the_faq_process(tmp_path):
    settings = make_settings(tmp_path, cache_dir=tmp_path / "cache")
    faq_module._CACHE.clear()
    with pytest.raises(RuntimeError, match="generator"), faq_fit_aside(settings, NEGATIVES) as child:
        raise RuntimeError("the generator did not load")
    assert child is not None and child.returncode == -signal.SIGKILL


def test_start_up_fits_the_faq_itself_when_its_process_fails(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(services, "_FIT_FAQ", "import sys; sys.exit(3)")
    monkeypatch.setattr(services, "faq_negatives", lambda settings, pairs: NEGATIVES)  # a fit of a second or so
    faq_module._CACHE.clear()
    settings = make_settings(tmp_path, cache_dir=tmp_path / "cache", embedder="")
    loaded = services.load_services(settings, generator_factory=lambda _: None)
    assert "the FAQ's process failed (exit code 3)" in caplog.text
    match = loaded.faq.best("where are the toilets?")
    assert match is not None and match.entry.id == "toilets"
    assert faq_module.is_cached(settings.faq_file, NEGATIVES, settings.cache_dir)
