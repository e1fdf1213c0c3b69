"""The evaluation's command line refuses settings it cannot honour before loading anything; the runs table."""

from __future__ import annotations

import csv

import pytest

from training import evaluate


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
    assert evaluate.cheapest({0.35: 392.0, 0.4: 390.0, 0.45: 410.0}) == 0.4
    assert evaluate.cheapest({0.35: 300.0, 0.4: 302.0, 0.45: 350.0}) == 0.4  # within 1%: fewer wrong answers
    assert evaluate.cheapest({0.35: 300.0, 0.4: 304.0}) == 0.35  # past 1%: the cheaper one


def test_the_clarify_grid_needs_the_choice_sets_and_names_them():
    args = evaluate.build_parser().parse_args(["--set", "validation", "--clarify-grid", "0.4,0.35"])
    assert args.clarify_grid == "0.4,0.35"
    assert {evaluate.VALIDATION_DIR.as_posix(), evaluate.VALIDATION_B_DIR.as_posix()} == {
        "data/validation",
        "data/validation-b",
    }
