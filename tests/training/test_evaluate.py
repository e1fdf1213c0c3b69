"""The evaluation's command line refuses settings it cannot honour before loading anything; the runs table."""

from __future__ import annotations

import csv

import pytest

from training import evaluate, metrics


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--draft-tokens", "4"], "add --batch 1"),  # prompt lookup answers one question at a time
        (["--draft-tokens", "-1", "--batch", "1"], "0 or more"),
        (["--batch", "0"], "--batch 1 or more"),
        (["--copy-bias", "1,-1"], "copy bias values must be 0 or more"),
    ],
)
def test_impossible_decoding_settings_are_refused(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["--config", "training/configs/smollm2-135m-lora.yaml", *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_variant_runs_once_per_copy_bias_unless_it_names_its_own():
    runs = evaluate.parse_runs("adapter+retrieval,base+retrieval@0", "1,2.5")
    assert runs == [("adapter+retrieval", 1.0), ("adapter+retrieval", 2.5), ("base+retrieval", 0.0)]


def test_a_run_with_a_new_metric_extends_the_runs_table(tmp_path):
    path = tmp_path / "runs.csv"
    evaluate.append_run({"variant": "a", "bleu": 0.1}, path)
    evaluate.append_run({"variant": "b", "bleu": 0.2, "fallbacks": 3}, path)
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [{"variant": "a", "bleu": "0.1", "fallbacks": ""}, {"variant": "b", "bleu": "0.2", "fallbacks": "3"}]


def test_a_ragged_runs_table_is_rewritten_without_losing_rows(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("variant,bleu\na,0.1\nb,0.2,stray\n", encoding="utf-8")
    evaluate.append_run({"variant": "c", "bleu": 0.3}, path)
    with path.open(encoding="utf-8", newline="") as f:
        assert [r["variant"] for r in csv.DictReader(f)] == ["a", "b", "c"]


def test_the_clarify_threshold_is_the_cheapest_and_of_near_ties_the_highest():
    assert metrics.cheapest({0.35: 392.0, 0.4: 390.0, 0.45: 410.0}) == 0.4
    assert metrics.cheapest({0.35: 300.0, 0.4: 302.0, 0.45: 350.0}) == 0.4  # within 1%: fewer wrong answers
    assert metrics.cheapest({0.35: 300.0, 0.4: 304.0}) == 0.35  # past 1%: the cheaper one


def test_the_clarify_grid_answers_both_choice_sets_at_each_threshold_and_writes_the_cheapest(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import app.kiosk.services
    import training.fresh_report
    import training.fresh_set

    services = SimpleNamespace(clarify_below=None, verbatim_from=1.0)
    read = []
    monkeypatch.setattr(app.kiosk.services, "load_services", lambda *a: services)
    monkeypatch.setattr(training.fresh_set, "load", lambda d: read.append(d.as_posix()) or d.as_posix())

    async def answer_all(kiosk, questions):  # a stricter threshold: fewer wrong, more declined
        assert kiosk.s.verbatim_from == 0.0  # verified answers only: no model
        wrong = 5 if kiosk.s.clarify_below < 0.45 else 1
        declined = 0 if kiosk.s.clarify_below < 0.45 else 6
        return [
            SimpleNamespace(wrong=i < wrong, declined=wrong <= i < wrong + declined, key_facts=1.0) for i in range(20)
        ]

    monkeypatch.setattr(training.fresh_report, "answer_all", answer_all)
    report = tmp_path / "clarify.md"
    assert evaluate.main(["--set", "validation", "--clarify-grid", "0.5,0.4,0.4,", "--report", str(report)]) == 0
    assert set(read) >= {"data/validation", "data/validation-b"}
    text = report.read_text(encoding="utf-8")
    assert text.count("| 0.4 ") == 1  # each threshold once, in order
    assert "| 0.5 **chosen** | 18 |" in text and "| 0.4 | 30 |" in text  # 2 x (3 x 1 + 6) against 2 x (3 x 5)
    assert "KIOSK_CLARIFY_THRESHOLD=0.5" in text


def test_the_clarify_grid_is_refused_without_the_choice_sets(capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--set", "fresh", "--clarify-grid", "0.4"])
    assert "--set validation" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main(["--set", "validation", "--clarify-grid", "0.4,x"])
