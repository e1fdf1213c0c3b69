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


def test_language_and_kind_come_from_the_category_or_the_letters():
    from training.gate_data import Example

    cases = {
        ("giá nhà quận 1", "hcmc-business-vi"): ("vi", "city"),
        ("piste ho chi minh à moto", "trail-tourism-fr"): ("fr", "trail"),
        ("phở ngon ở sài gòn", "hcmc-food"): ("vi", "city"),  # no suffix: its letters say Vietnamese
        ("wife?", "fragment"): ("en", "fragment"),
        ("bac ho sinh nam nao", "vietnamese"): ("vi", "named"),
        ("ho ho ho", "homonyms"): ("en", "homonyms"),
    }
    for (text, category), expected in cases.items():
        group = "hard_positive" if category in ("fragment", "vietnamese") else "hard_negative"
        example = Example(text, int(group == "hard_positive"), group, category, "train")  # type: ignore[arg-type]
        assert (example.language, example.kind) == expected, (text, category)
    assert Example("comment ça va", 0, "general", "general-fr", "train").kind == "general"
    assert Example("x", 1, "qa", "phrasing-fr", "train", answer="a").language == "fr"


def test_validation_takes_its_share_of_every_cell_the_same_way_each_time():
    from training.gate_data import Example, carve_validation

    examples = [
        Example(f"question {lang} {i}", 0, "hard_negative", f"homonyms-{lang}", "test" if i % 5 == 0 else "train")
        for lang in ("vi", "fr")
        for i in range(40)
    ] + [Example(f"q {i}", 1, "hard_positive", "fragment", "train") for i in range(20)]
    carved = carve_validation(examples, 0.15, seed=0)
    for category, n in (("homonyms-vi", 40), ("homonyms-fr", 40), ("fragment", 20)):
        chosen = [e for e in carved if e.category == category and e.split == "val"]
        assert len(chosen) == round(0.15 * n), category
    assert [e.split for e in carved if e.split == "test"] == ["test"] * 16  # test is never touched
    assert carved == carve_validation(list(reversed(examples)), 0.15, seed=0)[::-1]
    assert carved != carve_validation(examples, 0.15, seed=1)


def test_the_gates_validation_has_every_language_and_kind_of_hand_written_question():
    examples = load_examples()
    cells = {(e.language, e.kind) for e in examples if e.split == "val" and e.group != "qa"}
    for lang in ("vi", "fr"):
        assert {(lang, k) for k in ("city", "trail", "other-people", "homonyms", "communism", "general")} <= cells
        assert (lang, "fragment") in cells
