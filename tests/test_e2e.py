"""End to end on the real embedded default: `python -m app` (the image's command), SmolLM2 + shipped adapter."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    environment = {
        **os.environ,
        "PORT": str(port),
        "KIOSK_DB_PATH": str(tmp_path / "kiosk.sqlite3"),
        "KIOSK_STAFF_API_KEY": "e2e-key",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=environment,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen[str], url: str, timeout: float = 300) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return time.monotonic() - start
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server never became ready")


def test_real_model_answers_and_sigterm_drains(tmp_path):
    process, url = _start(tmp_path)
    try:
        _wait_ready(process, url)
        r = httpx.post(url + "/api/v1/ask", json={"question": "what did uncle ho do in paris in 1919?"}, timeout=60)
        assert r.status_code == 200
        body = r.json()
        assert body["route"] in {"generated", "curated"} and body["related"]
        # no invented turn and not empty (how often answers end on a full stop is measured by training.evaluate)
        assert body["answer"].strip() and "<human" not in body["answer"] and "<assistant" not in body["answer"]
        off = httpx.post(url + "/api/v1/ask", json={"question": "best pho in district 1?"}, timeout=30).json()
        assert off["route"] == "off_topic"

        # SIGTERM while an answer is being generated: it still arrives, then the process exits cleanly.
        result: dict[str, object] = {}

        def ask() -> None:
            question = "tell me about the journey of nguyen tat thanh on the ship in 1911 and after"
            result["response"] = httpx.post(url + "/api/v1/ask", json={"question": question}, timeout=60)

        thread = threading.Thread(target=ask)
        thread.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        thread.join(60)
        response = result["response"]
        assert isinstance(response, httpx.Response) and response.status_code == 200
        # uvicorn re-raises the signal once it has shut down gracefully: exit status 0 or -SIGTERM.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        assert "Finished server process" in (process.stdout.read() if process.stdout else "")
    finally:
        if process.poll() is None:
            process.kill()


def test_corrupt_gate_stops_start_up_with_a_clear_message(tmp_path):
    gate_dir = tmp_path / "classifier"
    shutil.copytree(ROOT / "models/classifier", gate_dir)
    data = bytearray((gate_dir / "gate.joblib").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (gate_dir / "gate.joblib").write_bytes(bytes(data))
    process, _ = _start(tmp_path, KIOSK_GATE_DIR=str(gate_dir))
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "does not match its manifest" in output


def test_missing_adapter_stops_start_up(tmp_path):
    process, _ = _start(tmp_path, KIOSK_ADAPTER_DIR=str(tmp_path / "nowhere"))
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0 and "manifest not found" in output
