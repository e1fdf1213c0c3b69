"""The scope rule that keeps the QA set's own questions out of the gate's off-topic examples."""

from __future__ import annotations

from training.gate_data import load_examples, scope_conflict

KNOWLEDGE = " le duan became first secretary in 1960 truong chinh stepped down karl marx "


def test_a_question_the_qa_set_asks_cannot_be_off_topic():
    assert scope_conflict("Who was Lê Duẩn?", {"who was le duan"}, KNOWLEDGE) == "asked as a related question"


def test_asking_who_someone_in_his_story_was_is_ambiguous_but_other_questions_about_them_are_not():
    assert scope_conflict("truong chinh là ai", set(), KNOWLEDGE)
    assert scope_conflict("who was karl marx", set(), KNOWLEDGE)
    assert scope_conflict("when did truong chinh die", set(), KNOWLEDGE) == ""
    assert scope_conflict("who was pham minh chinh", set(), KNOWLEDGE) == ""  # not in the knowledge base
    assert scope_conflict("who is that?", set(), " that ") == ""  # a pronoun, not a person


def test_ambiguous_questions_are_neither_trained_on_nor_scored_and_the_related_twin_stays():
    examples = load_examples()
    ambiguous = [e for e in examples if e.split == "ambiguous"]
    assert ambiguous and all(e.label == 0 and e.reason for e in ambiguous)
    le_duan = [e for e in examples if e.text == "who was le duan"]
    assert {(e.label, e.split == "ambiguous") for e in le_duan} == {(1, False), (0, True)}
