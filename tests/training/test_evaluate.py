"""The evaluation's command line refuses settings it cannot honour before loading anything."""

from __future__ import annotations

import pytest

from training import evaluate


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--draft-tokens", "4"], "add --batch 1"),  # prompt lookup answers one question at a time
        (["--draft-tokens", "-1", "--batch", "1"], "0 or more"),
        (["--batch", "0"], "--batch 1 or more"),
    ],
)
def test_impossible_decoding_settings_are_refused(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["--config", "training/configs/smollm2-135m-lora.yaml", *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
