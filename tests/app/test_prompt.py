"""The prompt format, answer clean-up and the streaming text filter."""

from __future__ import annotations

import time

from app.generation.base import GenerationRequest
from app.generation.stopping import TextStream
from app.prompt import Turn, build_prompt, clean_answer, cut_at_stop, ends_cleanly, estimate_tokens, fit_history


def test_prompt_puts_sources_history_and_question_in_order():
    p = build_prompt("and his father?", "Hồ was born in 1890.", [Turn("when was he born", "In 1890.")])
    assert p == (
        "<sources>: Hồ was born in 1890.\n<human>: when was he born\n<assistant>: In 1890.\n"
        "<human>: and his father?\n<assistant>:"
    )
    assert build_prompt("who?") == "<human>: who?\n<assistant>:"


def test_clean_answer_stops_at_turn_markers_and_ends_on_a_sentence():
    assert clean_answer(" He was born in 1890.\n<human>: and then?") == "He was born in 1890."
    assert clean_answer("He was born in 1890. He left in 19") == "He was born in 1890."
    assert clean_answer("He was born in 1890") == "He was born in 1890"  # one unfinished sentence is kept
    assert clean_answer("Born in 1890.\n\nQuestion: x") == "Born in 1890."
    assert clean_answer("") == ""


def test_ends_cleanly():
    assert ends_cleanly("He was born in 1890.")
    assert not ends_cleanly("He was born in")
    assert not ends_cleanly("He was born. <human>: more")
    assert not ends_cleanly("")


def test_cut_at_stop():
    assert cut_at_stop("abc<human>: x") == ("abc", True)
    assert cut_at_stop("abc") == ("abc", False)


def test_fit_history_keeps_the_latest_whole_turns_that_fit():
    turns = [Turn(f"q{i} " + "w " * 10, f"a{i}") for i in range(5)]
    words = lambda text: len(text.split())  # noqa: E731 - each turn's lines: 14 words
    assert fit_history(turns, 30, words) == tuple(turns[-2:])
    assert fit_history(turns, 13, words) == ()  # a turn is never cut in the middle
    assert fit_history(turns, 10_000, words) == tuple(turns)
    assert fit_history(turns, 0, words) == ()


def test_the_token_estimate_counts_words_and_long_unbroken_strings():
    assert estimate_tokens("one two three") == 4
    assert estimate_tokens("x" * 400) == 100  # one "word", but no tokenizer reads it as one token


def test_the_text_stream_does_not_show_the_space_before_the_first_word():
    shown: list[str] = []
    stream = TextStream(GenerationRequest("p", 64, time.monotonic() + 10, on_text=shown.append))
    raw = ""
    for piece in [" ", " He", " was", " born", " in", " 1890", "."]:
        raw += piece
        stream.update(raw)
    stream.flush(raw)
    assert "".join(shown) == "He was born in 1890."
