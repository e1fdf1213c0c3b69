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
