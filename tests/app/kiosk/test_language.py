"""Language of a visitor's question: Vietnamese with or without diacritics, French, English."""

from __future__ import annotations

import pytest

from app.kiosk.language import detect


@pytest.mark.parametrize(
    "question, language",
    [
        ("Bác Hồ sinh năm nào?", "vi"),
        ("bac ho sinh nam nao", "vi"),
        ("ho chi minh la ai", "vi"),
        ("que bac o dau", "vi"),
        ("thọ mấy tuổi", "vi"),
        ("bac mat nam nao vay", "vi"),
        ("il est né où ?", "fr"),
        ("sa femme ?", "fr"),
        ("son vrai nom ?", "fr"),
        ("pourquoi il est allé en France", "fr"),
        ("Quand Hô Chi Minh est-il mort ?", "fr"),
        ("When was Ho Chi Minh born?", "en"),
        ("his son?", "en"),
        ("wife?", "en"),
        ("who is ho chi minh", "en"),
        ("is that true?", "en"),
        ("what did he do in Paris", "en"),
        ("Nguyen Ai Quoc in Paris", "en"),
    ],
)
def test_detect(question: str, language: str) -> None:
    assert detect(question) == language


@pytest.mark.parametrize(
    "question, unknown, language",
    [
        ("par qui ?", "fr", "fr"),  # no telltale word: the conversation's language
        ("1911?", "vi", "vi"),
        ("what did he do there", "fr", "en"),  # English words say English whatever came before
        ("có đúng không", "fr", "vi"),
        ("où ça ?", "en", "fr"),
    ],
)
def test_a_question_without_telltale_words_takes_the_language_given(question: str, unknown: str, language: str):
    assert detect(question, unknown=unknown) == language  # type: ignore[arg-type]
