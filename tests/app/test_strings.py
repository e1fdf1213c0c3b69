"""The visitor's strings: every key in every language, suggestions in their own language, and the page's config."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest

from app.kiosk.gate import RelevanceGate
from app.kiosk.language import LANGUAGES, detect
from app.settings import Settings
from app.strings import PAGE_LANGUAGES, STRINGS, SUGGESTIONS
from tests.app.conftest import make_client
from tests.conftest import ROOT


def test_every_language_has_every_key() -> None:
    assert set(STRINGS) == set(LANGUAGES)
    for language in LANGUAGES:
        assert STRINGS[language].keys() == STRINGS["en"].keys(), language
        assert all(text.strip() for text in STRINGS[language].values()), language


def test_the_answering_side_finds_its_keys() -> None:
    for key in ("clarify", "judgement", "not_in_sources", "unverified_faq", "english_answer_note", "off_topic"):
        assert key in STRINGS["en"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_suggestions_are_in_their_own_language(language: str) -> None:
    assert len(SUGGESTIONS[language]) >= 3  # an off-topic reply offers three
    for question in SUGGESTIONS[language]:
        assert detect(question) == language, question


@pytest.fixture(scope="module")
def gate() -> RelevanceGate:
    return RelevanceGate.load(ROOT / "models/classifier")


def test_every_suggestion_passes_the_gate(gate: RelevanceGate) -> None:
    # a tapped suggestion answered "I can only answer questions about Ho Chi Minh" would be absurd
    refused = [q for qs in SUGGESTIONS.values() for q in qs if not gate.is_related(q)]
    assert not refused


def test_french_punctuation_never_starts_a_line() -> None:
    texts = [*STRINGS["fr"].values(), *SUGGESTIONS["fr"]]
    assert not [t for t in texts if re.search(r" [?!:;»]|« ", t)]


def test_the_museum_default_is_a_language_of_the_switch() -> None:
    assert typing.get_args(Settings.model_fields["ui_language"].annotation) == PAGE_LANGUAGES


def test_the_page_carries_every_language(tmp_path: Path) -> None:
    with make_client(tmp_path, ui_language="vi") as client:
        html = client.get("/").text
    config = json.loads(re.search(r'id="kiosk-config">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert config["defaultLanguage"] == "vi"
    assert config["strings"] == STRINGS and config["suggestions"] == {c: SUGGESTIONS[c] for c in PAGE_LANGUAGES}
    assert '<html lang="vi">' in html and STRINGS["vi"]["title"] in html
    assert re.search(r'data-language="vi"[^>]*aria-pressed="true"', html)
    assert re.search(r'data-language="en"[^>]*aria-pressed="false"', html)
