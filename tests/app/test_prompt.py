"""The prompt format, answer clean-up and the streaming text filter."""

from __future__ import annotations

from app.prompt import Turn, build_prompt, clean_answer, cut_at_stop, ends_cleanly


def test_prompt_puts_sources_history_and_question_in_order():
    p = build_prompt("and his father?", "Hồ was born in 1890.", [Turn("when was he born", "In 1890.")])
    assert p == ("<sources>: Hồ was born in 1890.\n<human>: when was he born\n<assistant>: In 1890.\n"
                 "<human>: and his father?\n<assistant>:")  # fmt: skip
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
