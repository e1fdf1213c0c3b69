"""The fetch path against a local HTTP server: retries, back-off, timeouts, 404/500, and the exit status."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from training import scrape

PAGE = (Path(__file__).parent.parent / "fixtures" / "wiki_full_page.html").read_text(encoding="utf-8")


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}
    agents: ClassVar[list[str]] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        count = self.hits[name] = self.hits.get(name, 0) + 1
        self.agents.append(self.headers.get("User-Agent", ""))
        if name == "Good" or (name == "Flaky" and count > 2):
            return self._send(200, PAGE)
        if name == "Busy" and count == 1:
            return self._send(429, "slow down", {"Retry-After": "0"})
        if name == "Busy":
            return self._send(200, PAGE)
        if name == "Slow":
            time.sleep(0.5)
            return self._send(200, PAGE)
        if name == "Broken":
            return self._send(200, "<html><body><table><tr><td>no prose</td></tr></table></body></html>")
        if name in {"Flaky", "Always500"}:
            return self._send(500, "oops")
        return self._send(404, "not found")

    def _send(self, status, body, headers=None):
        data = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def server():
    _Handler.hits = {}
    _Handler.agents = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/wiki/"
    httpd.shutdown()
    httpd.server_close()


def _config(base, tmp_path, **kw):
    defaults = dict(base_url=base, raw_dir=tmp_path / "raw", backoff_s=0.01, min_interval_s=0.0, timeout_s=2.0)
    return scrape.ScrapeConfig(**{**defaults, **kw})


def test_success_sends_a_descriptive_user_agent(server, tmp_path):
    fetcher = scrape.Fetcher(_config(server, tmp_path))
    assert "firstHeading" in fetcher.get(server + "Good")
    assert "HCMMuseumKioskBot" in _Handler.agents[0] and "http" in _Handler.agents[0]


def test_server_errors_are_retried_then_succeed(server, tmp_path):
    sleeps: list[float] = []
    fetcher = scrape.Fetcher(_config(server, tmp_path, retries=3), sleep=sleeps.append)
    assert "firstHeading" in fetcher.get(server + "Flaky")
    assert _Handler.hits["Flaky"] == 3
    assert sleeps == [0.01, 0.02]  # exponential back-off


def test_429_is_retried(server, tmp_path):
    fetcher = scrape.Fetcher(_config(server, tmp_path), sleep=lambda s: None)
    assert "firstHeading" in fetcher.get(server + "Busy")
    assert _Handler.hits["Busy"] == 2


def test_persistent_500_gives_up_after_the_retries(server, tmp_path):
    fetcher = scrape.Fetcher(_config(server, tmp_path, retries=2), sleep=lambda s: None)
    with pytest.raises(scrape.FetchError, match="HTTP 500"):
        fetcher.get(server + "Always500")
    assert _Handler.hits["Always500"] == 3


def test_404_is_not_retried(server, tmp_path):
    fetcher = scrape.Fetcher(_config(server, tmp_path, retries=3), sleep=lambda s: None)
    with pytest.raises(scrape.FetchError, match="HTTP 404"):
        fetcher.get(server + "Missing")
    assert _Handler.hits["Missing"] == 1


def test_timeout_is_retried_and_reported(server, tmp_path):
    fetcher = scrape.Fetcher(_config(server, tmp_path, timeout_s=0.1, retries=1), sleep=lambda s: None)
    with pytest.raises(scrape.FetchError, match="Timeout"):
        fetcher.get(server + "Slow")
    assert _Handler.hits["Slow"] == 2


def test_polite_rate_between_requests(server, tmp_path):
    sleeps: list[float] = []
    fetcher = scrape.Fetcher(_config(server, tmp_path, min_interval_s=5.0), sleep=sleeps.append)
    fetcher.get(server + "Good")
    fetcher.get(server + "Good")
    assert len(sleeps) == 1 and 4.0 < sleeps[0] <= 5.0


def test_main_skips_failures_completes_the_rest_and_exits_1(server, tmp_path, capsys):
    kb = tmp_path / "kb"
    kb.mkdir()
    out = tmp_path / "corpus.jsonl"
    argv = [
        "--base-url",
        server,
        "--raw-dir",
        str(tmp_path / "raw"),
        "--knowledge-dir",
        str(kb),
        "--out",
        str(out),
        "--article",
        "Good",
        "--article",
        "Missing",
        "--article",
        "Broken",
    ]
    assert scrape.main(argv) == 1
    err = capsys.readouterr().err
    assert "FAILED Missing" in err and "FAILED Broken" in err
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows and {r["title"] for r in rows} == {"Test Article"}
    assert all(r["licence"] == "CC BY-SA 4.0" and r["url"].endswith("/wiki/Good") for r in rows)
    assert (tmp_path / "raw" / "good.html").exists()


def test_main_exits_0_when_all_pages_succeed_and_uses_the_cache(server, tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    argv = [
        "--base-url",
        server,
        "--raw-dir",
        str(tmp_path / "raw"),
        "--knowledge-dir",
        str(kb),
        "--out",
        str(tmp_path / "c.jsonl"),
        "--article",
        "Good",
    ]
    assert scrape.main(argv) == 0
    assert scrape.main(argv) == 0
    assert _Handler.hits["Good"] == 1  # the second run read the cache


def test_offline_folder_of_saved_pages(tmp_path):
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "Test_Article.html").write_text(PAGE, encoding="utf-8")
    (saved / "Empty.html").write_text("<html><body></body></html>", encoding="utf-8")
    kb = tmp_path / "kb"
    kb.mkdir()
    out = tmp_path / "c.jsonl"
    argv = ["--html-dir", str(saved), "--raw-dir", str(tmp_path / "raw"), "--knowledge-dir", str(kb), "--out", str(out)]
    assert scrape.main(argv) == 1  # the empty page failed, the other made it
    assert "Kim Liên" in out.read_text(encoding="utf-8")
