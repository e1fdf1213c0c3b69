"""The dataset validator catches each kind of defect, and the split is deterministic and leak-free."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.kiosk.guard import missing_facts
from training import dataset, qa

PASSAGES = [
    {"id": "kb-early-life-01", "text": "Hồ Chí Minh was born on 19 May 1890 in Kim Liên, in Nghệ An province."},
    {"id": "kb-early-life-02", "text": "His father, Nguyễn Sinh Sắc, was a Confucian scholar."},
]
GOOD = [
    ("when was he born", "Ho Chi Minh was born on 19 May 1890.", "kb-early-life-01"),
    ("where was uncle ho born?", "He was born in Kim Liên, in Nghe An province.", "kb-early-life-01"),
    ("who was his father", "His father was Nguyễn Sinh Sắc, a Confucian scholar.", "kb-early-life-02"),
    ("birthplace?", "Ho Chi Minh was born in Kim Liên.", "kb-early-life-01"),
    ("his dad's job", "His father was a Confucian scholar.", "kb-early-life-02"),
    ("what year was bac ho born in", "Hồ Chí Minh was born in 1890.", "kb-early-life-01"),
    ("ho chi min birthday", "He was born on 19 May 1890.", "kb-early-life-01"),
]
FAQ = "entries:\n  - id: opening-hours\n    questions: [when are you open]\n    answer: Open 8:00 to 16:30.\n"


def _write_csv(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    pairs = [qa.QAPair(q, a, t, tuple(s.split())) for q, a, t, s in rows]
    qa.write_pairs(path, pairs)


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/qa/source").mkdir(parents=True)
    corpus = [
        {"source": "museum", "title": "Early life", "section": "Birth", "url": "", "licence": "x", **p}
        for p in PASSAGES
    ]
    (tmp_path / "data/corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus), encoding="utf-8")
    (tmp_path / "data/faq.yaml").write_text(FAQ, encoding="utf-8")
    _write_csv(
        tmp_path / "data/qa/museum.csv", [("opening times?", "Open 8:00 to 16:30.", "museum", "faq-opening-hours")]
    )
    _write_csv(tmp_path / "data/qa/source/early-life.csv", [(q, a, "early-life", s) for q, a, s in GOOD])
    assert dataset.main(["split"]) == 0
    return tmp_path


def _reasons(defects):
    return " | ".join(d.reason for d in defects)


def test_clean_data_passes(workspace):
    assert dataset.validate() == []
    assert dataset.main(["validate"]) == 0


def _add_row(workspace, question, answer, sources="kb-early-life-01", topic="early-life"):
    path = workspace / "data/qa/source/early-life.csv"
    rows = [(p.question, p.answer, p.topic, " ".join(p.source_ids)) for p in qa.read_pairs(path)]
    _write_csv(path, rows + [(question, answer, topic, sources)])


@pytest.mark.parametrize(
    ("question", "answer", "sources", "topic", "reason"),
    [
        ("", "He was born in 1890.", "kb-early-life-01", "early-life", "empty question"),
        ("q1 born?", "", "kb-early-life-01", "early-life", "empty answer"),
        ("q2 born?", "He was born in 1890.", "", "early-life", "empty source_ids"),
        ("q3 born?", "He was born in 1890.", "kb-nowhere-01", "early-life", "unknown source id"),
        ("q4 born?", "He was born in 1891.", "kb-early-life-01", "early-life", "not in the cited passages: 1891"),
        ("q5 born?", "He was born in Huế.", "kb-early-life-01", "early-life", "not in the cited passages: Huế"),
        ("q6 born?", "word " * 51, "kb-early-life-01", "early-life", "answer has 51 words"),
        ("q7 born?", "He was born. In 1890. In Kim Liên.", "kb-early-life-01", "early-life", "3 sentences"),
        ("q8 born?", "He was born in 1890.", "kb-early-life-01", "wrong-topic", "unknown topic"),
        ("x" * 501, "He was born in 1890.", "kb-early-life-01", "early-life", "longer than 500"),
        ("WHEN was he born?!", "He was born in 1890.", "kb-early-life-01", "early-life", "duplicate question"),
        (
            "where was he born",
            "Yes. He was born in Kim Liên.",
            "kb-early-life-01",
            "early-life",
            "not a yes/no question",
        ),
        ("birth year?", "No. He was born in 1890.", "kb-early-life-01", "early-life", "not a yes/no question"),
    ],
)
def test_each_defect_is_reported_with_file_and_row(workspace, question, answer, sources, topic, reason):
    _add_row(workspace, question, answer, sources, topic)
    defects = dataset.validate(topic="early-life")
    assert reason in _reasons(defects)
    assert all(d.file.endswith("early-life.csv") and d.row == len(GOOD) + 2 for d in defects)
    assert dataset.main(["validate", "--topic", "early-life"]) == 1


def test_fact_check_folds_case_and_accents():
    assert missing_facts("He was born in Nghe An in 1890.", "born in 1890 in Nghệ An") == []
    assert missing_facts("He was born in 1890.", "born in 11890") == ["1890"]


def test_bad_encoding_is_reported(workspace):
    path = workspace / "data/qa/source/early-life.csv"
    path.write_bytes(path.read_bytes() + b"caf\xe9,x,early-life,kb-early-life-01\n")
    assert "not UTF-8" in _reasons(dataset.validate(topic="early-life"))


def test_split_out_of_date_is_reported(workspace):
    _add_row(workspace, "mother's name?", "Hồ Chí Minh was born in 1890.")
    assert "rerun the split" in _reasons(dataset.validate())


def test_near_duplicate_across_split_is_reported(workspace):
    train = qa.read_pairs(qa.TRAIN_CSV)
    test = qa.read_pairs(qa.TEST_CSV)
    assert test, "the fixture's split should put at least one pair in test"
    twin = qa.QAPair(test[0].question + " please", test[0].answer, test[0].topic, test[0].source_ids)
    qa.write_pairs(qa.TRAIN_CSV, [*train, twin])
    assert "near-duplicate" in _reasons(dataset.validate())


def test_a_yes_no_answer_to_a_yes_no_question_passes(workspace):
    _add_row(workspace, "was he born in kim lien?", "Yes. He was born in Kim Liên.")
    _add_row(workspace, "Bác sinh ở Huế phải không?", "No. He was born in Kim Liên.")
    assert dataset.validate(topic="early-life") == []


def test_an_answer_on_both_sides_of_the_split_is_reported(workspace):
    train = qa.read_pairs(qa.TRAIN_CSV)
    test = qa.read_pairs(qa.TEST_CSV)
    assert test, "the fixture's split should put at least one pair in test"
    other_question = qa.QAPair("tell me something about uncle ho", test[0].answer, test[0].topic, test[0].source_ids)
    qa.write_pairs(qa.TRAIN_CSV, [*train, other_question])
    assert "answer also in training" in _reasons(dataset.validate())


def test_museum_rows_must_cite_faq_entries(workspace):
    _write_csv(workspace / "data/qa/museum.csv", [("toilets?", "Open 8:00 to 16:30.", "museum", "faq-toilets")])
    assert "unknown source id(s) faq-toilets" in _reasons(dataset.validate())


def test_split_is_deterministic_stratified_and_keeps_answers_and_near_duplicates_together():
    def distinct(i: int, t: str) -> str:  # questions and answers that share no wording
        return hashlib.sha256(f"{t}{i}".encode()).hexdigest()[:16]

    rows = [
        qa.QAPair(distinct(i, t), distinct(i % 20, f"answer {t}"), t, ("x",)) for t in ("a", "b") for i in range(40)
    ]
    rows += [qa.QAPair("when was he born", "1890", "a", ("x",)), qa.QAPair("when was he born ?!", "May", "a", ("x",))]
    train1, test1 = dataset.split(rows)
    _train2, test2 = dataset.split(list(reversed(rows)))
    assert {p.question for p in test1} == {p.question for p in test2}
    for topic in ("a", "b"):
        share = sum(p.topic == topic for p in test1) / sum(p.topic == topic for p in rows)
        assert 0.1 <= share <= 0.2
    born = {p.question for p in test1} & {"when was he born", "when was he born ?!"}
    assert born in (set(), {"when was he born", "when was he born ?!"})
    assert not {qa.answer_key(p.answer) for p in train1} & {qa.answer_key(p.answer) for p in test1}
    assert dataset.answer_leak_defects(train1, test1) == []


def _offtopic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: dict[str, list[str]]) -> list[dataset.Defect]:
    """The gate's four question files with `rows` (file stem -> CSV lines after the header), checked."""
    from training import gate_data

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "data/offtopic"
    folder.mkdir(parents=True)
    headers = {"general": "question,source", "general_multilingual": "question,category"}
    for stem in ("general", "general_multilingual", "hard_negatives", "hard_positives"):
        lines = [headers.get(stem, "question,category"), *rows.get(stem, [])]
        (folder / f"{stem}.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    monkeypatch.setattr(gate_data, "OFFTOPIC_DIR", Path("data/offtopic"))
    return dataset.offtopic_defects()


def test_the_gates_own_question_files_pass():
    assert dataset.offtopic_defects() == []


def test_each_defect_of_the_gates_question_files_is_reported(tmp_path, monkeypatch):
    defects = _offtopic(
        tmp_path,
        monkeypatch,
        {
            "general": ["what is the capital of peru?,webquestions"],
            "general_multilingual": ["thủ đô của peru là gì,general-vi", "mấy giờ rồi,general-vi"],
            "hard_negatives": [
                "giá vé máy bay đi tp hồ chí minh,hcmc-travel-vi",  # the city: fine
                "bác hồ thích ăn gì,hcmc-food-vi",  # names him: not off-topic
                "May gio roi,general-vi",  # the same question folded
                "quán phở ngon,food-vi",  # a category with no kind
            ],
            "hard_positives": ["vợ ông ấy tên gì,fragment-vi", "vợ bác hồ tên gì,fragment-vi"],
        },
    )
    found = {(Path(d.file).stem, d.row, d.reason.split(" (")[0]) for d in defects}
    assert found == {
        ("hard_negatives", 3, "an off-topic question that names him"),
        ("hard_negatives", 4, "duplicate question"),
        ("hard_negatives", 5, "unknown category 'food-vi'"),
        ("hard_positives", 3, "a fragment that names him"),
    }


def test_a_wrong_header_in_the_gates_files_is_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    defects = _offtopic(tmp_path, monkeypatch, {})
    assert defects == []
    (tmp_path / "data/offtopic/hard_negatives.csv").write_text("q,c\r\nx,y\r\n", encoding="utf-8")
    assert [d.reason for d in dataset.offtopic_defects()] == ["header must be question,category"]
