"""Every shipped artefact was built from the repository's files as they are now; else CI names the command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.artifacts import input_hashes, input_name, read_manifest, sha256_file
from tests.conftest import ROOT
from training import classifier, embedder, finetune
from training.config import load_config
from training.embedder_training import EmbedderConfig
from training.finetune_config import FinetuneConfig

GATE_YAML = Path("training/configs/gate.yaml")
ADAPTER_YAML = Path("training/configs/smollm2-135m-lora.yaml")
ENCODER_YAML = Path("training/configs/minilm-hcm-served.yaml")
FOLDS_YAML = Path("training/configs/minilm-hcm.yaml")
FOLDS = [Path(f"models/embedder/minilm-hcm-folds/fold-{k}/embedder.json") for k in range(5)]


def stale_inputs(recorded: dict[str, str], expected: list[Path]) -> list[str]:
    """How a manifest's recorded inputs differ from the files its training step reads now ("path (why)")."""
    now = {input_name(p): p for p in expected}
    stale = []
    for name in sorted(recorded.keys() | now.keys()):
        if name not in now:
            stale.append(f"{name} (recorded, no longer read)")
        elif name not in recorded:
            stale.append(f"{name} (read now, not recorded)")
        elif not now[name].is_file():
            stale.append(f"{name} (missing)")
        elif sha256_file(now[name]) != recorded[name]:
            stale.append(f"{name} (changed since the build)")
    return stale


def _gate() -> list[Path]:
    return classifier.input_files(load_config(classifier.GateConfig, GATE_YAML), GATE_YAML)


def _adapter() -> list[Path]:
    return finetune.input_files(load_config(FinetuneConfig, ADAPTER_YAML), ADAPTER_YAML)


def _encoder() -> list[Path]:
    return embedder.input_files(load_config(EmbedderConfig, ENCODER_YAML), ENCODER_YAML)


def _fold_encoder() -> list[Path]:
    return embedder.input_files(load_config(EmbedderConfig, FOLDS_YAML), FOLDS_YAML, folds=True)


def _artefact(
    name: str, manifests: list[Path], expected: Callable[[], list[Path]], command: str, known_stale: str = ""
) -> Any:
    """One shipped artefact; `known_stale` says why it is stale now (a strict xfail: a rebuild must remove it)."""
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"{known_stale}. Rebuild: {command}")]
    return pytest.param(manifests, expected, command, id=name, marks=marks if known_stale else [])


ARTEFACTS = [
    _artefact(
        "gate",
        [Path("models/classifier/manifest.json")],
        _gate,
        "python -m training.classifier train && python -m training.classifier evaluate (make gate)",
    ),
    _artefact(
        "adapter",
        [Path("models/adapters/smollm2-135m-hcm/adapter_manifest.json")],
        _adapter,
        f"python -m training.finetune --config {ADAPTER_YAML} (make adapter, ~20 min on 2 cores)",
    ),
    _artefact(
        "encoder",
        [Path("models/embedder/minilm-hcm/embedder.json")],
        _encoder,
        f"python -m training.embedder train --config {ENCODER_YAML} (make embedder, ~15 min)",
    ),
    _artefact(
        "fold-encoders",
        FOLDS,
        _fold_encoder,
        f"python -m training.embedder folds --config {FOLDS_YAML} (make embedder-folds, ~20 min), then the "
        "adapter, whose training contexts they rank (make adapter)",
    ),
]


@pytest.mark.parametrize(("manifests", "expected", "command"), ARTEFACTS)
def test_each_shipped_artefact_was_built_from_the_files_in_the_repository(
    manifests: list[Path], expected: Callable[[], list[Path]], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # inputs are named from the repository's root, where training commands run
    inputs = expected()
    for manifest in manifests:
        stale = stale_inputs(read_manifest(manifest).get("inputs") or {}, inputs)
        assert not stale, f"{manifest} is stale: {'; '.join(stale)}. Rebuild it: {command}"


def test_a_changed_added_or_dropped_input_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("a.csv", "b.csv", "c.yaml"):
        Path(name).write_text(name, encoding="utf-8")
    recorded = input_hashes([Path("a.csv"), Path("b.csv")])["inputs"]
    assert recorded == {name: sha256_file(Path(name)) for name in ("a.csv", "b.csv")}
    assert stale_inputs(recorded, [Path("a.csv"), tmp_path / "b.csv"]) == []  # an absolute path inside: same name
    Path("a.csv").write_text("a passage rewritten", encoding="utf-8")
    assert stale_inputs(recorded, [Path("a.csv"), Path("c.yaml")]) == [
        "a.csv (changed since the build)",
        "b.csv (recorded, no longer read)",
        "c.yaml (read now, not recorded)",
    ]
