"""An app built from the shipped gate, FAQ, QA pairs and corpus, with a fake generator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.kiosk.services import load_services
from app.main import create_app
from app.settings import Settings
from tests.conftest import ROOT, FakeGenerator

STAFF_KEY = "test-staff-key-0123456789"
_SHARED: dict[str, Path] = {}


@pytest.fixture(scope="session", autouse=True)
def _shared_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One start-up cache for the app tests: the verified answers' vectors and the FAQ fit are computed once,
    not per test (they are keyed by their inputs' hashes, so sharing cannot mix them up)."""
    _SHARED["cache"] = tmp_path_factory.mktemp("cache")


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "gate_dir": ROOT / "models/classifier",
        "corpus": ROOT / "data/corpus.jsonl",
        "qa_files": [ROOT / "data/qa/train.csv", ROOT / "data/qa/test.csv"],
        "faq_file": ROOT / "data/faq.yaml",
        "db_path": tmp_path / "kiosk.sqlite3",
        "cache_dir": _SHARED.get("cache", tmp_path / "cache"),
        "staff_api_key": STAFF_KEY,
        "rate_limit_per_minute": 1000,
        "warmup": True,
        "batch_wait_ms": 20,
        "clarify_threshold": 0.0,  # the generation path's tests need generation; the clarify tests raise it
        "verbatim_from": 1.0,  # likewise: the model writes (the verbatim tests lower it)
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def make_client(tmp_path: Path, generator: FakeGenerator | None = None, **overrides: object) -> TestClient:
    settings = make_settings(tmp_path, **overrides)
    fake = generator or FakeGenerator()
    app = create_app(settings, loader=lambda s: load_services(s, generator_factory=lambda _: fake))
    return TestClient(app)


@pytest.fixture()
def fake() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture()
def client(tmp_path: Path, fake: FakeGenerator) -> Iterator[TestClient]:
    with make_client(tmp_path, fake) as c:
        yield c
