"""The reranker's training data: written questions read with their conversations, and kept apart from the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.text import fold
from tests.conftest import ROOT
from training.reranker import RERANK_DIR, VALIDATION_DIR, input_files, read_written


def _lines(path: Path, *rows: dict[str, object]) -> None:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")


def test_turns_are_read_with_the_questions_before_them(tmp_path: Path) -> None:
    facts = [["1890"]]
    _lines(
        tmp_path / "questions.jsonl",
        {"id": "q1", "language": "en", "style": "plain", "question": "born when?", "key_facts": facts},
        {"id": "q2", "language": "en", "style": "plain", "question": "x", "key_facts": [], "answerable": False},
    )
    _lines(
        tmp_path / "conversations.jsonl",
        {
            "id": "c1",
            "language": "vi",
            "kind": "follow_up",
            "turns": [
                {"question": "Bác Hồ sinh ở đâu?", "key_facts": [["Kim Liên"]]},
                {"question": "năm nào?", "key_facts": facts},
            ],
        },
    )
    written = {w.id: w for w in read_written(tmp_path)}
    assert set(written) == {"q1", "c1#1", "c1#2"}  # an unanswerable question has nothing to rank
    assert written["c1#2"].before == ("Bác Hồ sinh ở đâu?",) and written["c1#1"].before == ()
    assert written["c1#2"].key_facts == (("1890",),) and written["c1#2"].language == "vi"


def test_a_broken_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "questions.jsonl").write_text('{"id": "q1", "question": "no facts"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"questions\.jsonl:1"):
        read_written(tmp_path)


def test_the_training_questions_cover_every_style_and_share_no_question_with_a_yardstick() -> None:
    """Nothing fitted on data/rerank may have seen a question of the validation or the fresh set (a question of more
    than three words, folded: "where?" is asked in every set)."""
    from training.fresh_set import EVAL_DIR, load

    written = read_written(ROOT / RERANK_DIR)
    assert len(written) >= 600 and len(input_files(ROOT / RERANK_DIR)) == 3
    assert {w.group for w in written} >= {"plain", "typo", "fragment", "long", "yesno", "vi_diacritics", "vi_plain"}
    assert {w.language for w in written} == {"en", "vi", "fr"}

    def key(question: str) -> str:
        return fold(question).strip(" ?")

    fresh = load(ROOT / EVAL_DIR)
    asked = [q.question for q in fresh.questions] + [t.question for c in fresh.conversations for t in c.turns]
    yardsticks = {key(q) for q in asked} | {key(w.question) for w in read_written(ROOT / VALIDATION_DIR)}
    shared = [w.id for w in written if key(w.question) in yardsticks and len(w.question.split()) > 3]
    assert shared == [], f"questions fitted on that a yardstick also asks: {shared[:5]}"
