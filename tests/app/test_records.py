"""Conversation memory, SQLite durability on kill -9, and the rate limiter."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

from app.api.security import RateLimiter, api_key_matches
from app.kiosk.sessions import SessionStore
from app.prompt import Turn
from app.records import Records, RequestRecord
from tests.conftest import ROOT


def test_sessions_keep_the_last_turns_and_expire():
    now = [0.0]
    store = SessionStore(max_turns=2, ttl_s=60, max_sessions=2, clock=lambda: now[0])
    for i in range(3):
        store.record("a", Turn(f"q{i}", f"a{i}"), related=True)
    assert [t.question for t in store.get("a").turns] == ["q1", "q2"]
    now[0] = 61
    assert store.get("a").turns == []


def test_sessions_are_bounded():
    store = SessionStore(max_turns=2, ttl_s=60, max_sessions=2)
    for sid in ("a", "b", "c"):
        store.record(sid, Turn("q", "a"), related=True)
    assert len(store) == 2 and store.get("a").turns == []


def test_rate_limiter_window():
    now = [0.0]
    limiter = RateLimiter(per_minute=2, clock=lambda: now[0])
    assert [limiter.retry_after("x") for _ in range(3)][:2] == [0, 0]
    assert limiter.retry_after("x") > 0 and limiter.retry_after("y") == 0
    now[0] = 61
    assert limiter.retry_after("x") == 0


def test_api_key_comparison():
    assert api_key_matches("secret", "secret")
    assert not api_key_matches("secret ", "secret") and not api_key_matches(None, "secret")
    assert not api_key_matches("", "")  # no configured key: closed


WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from app.records import Records, RequestRecord
records = Records(__import__("pathlib").Path({db!r}))
for i in range(100000):
    records.add_request(RequestRecord(f"{{i:032x}}", "generated", True, 0.9, 12.0, 5))
    print(i, flush=True)  # acknowledged only after the commit returned
"""


def test_no_committed_row_is_lost_on_kill_9(tmp_path):
    db = tmp_path / "k.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT), db=str(db))],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    acknowledged = -1
    start = time.monotonic()
    assert proc.stdout is not None
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= 30 or time.monotonic() - start > 30:
            break
    proc.kill()  # SIGKILL mid-write
    proc.wait()
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    assert rows >= acknowledged + 1


def test_feedback_needs_a_known_request(tmp_path):
    records = Records(tmp_path / "r.sqlite3")
    records.add_request(RequestRecord("a" * 32, "curated", True, 0.9, 3.0, 0))
    assert records.add_feedback("a" * 32, False, "too short")
    assert not records.add_feedback("b" * 32, True, None)
    stats = records.stats()
    assert stats["feedback"] == {"total": 1, "helpful": 0, "not_helpful": 1}
    assert "too short" in records.feedback_csv()


def test_faq_fit_is_cached_on_disk_and_a_damaged_cache_is_refitted(tmp_path):
    from app.kiosk import faq as faq_module

    path = ROOT / "data/faq.yaml"
    negatives = ["when was he born", "who was his father", "best pho in saigon"]
    faq_module._CACHE.clear()
    first = faq_module.load_faq(path, negatives, 0.5, tmp_path)
    cached = list(tmp_path.glob("faq-*.joblib"))
    assert len(cached) == 1
    faq_module._CACHE.clear()
    again = faq_module.load_faq(path, negatives, 0.5, tmp_path)
    assert again.best("where are the toilets?").entry.id == first.best("where are the toilets?").entry.id
    cached[0].write_bytes(b"not a joblib file")  # damaged: must be refitted, never loaded
    faq_module._CACHE.clear()
    refit = faq_module.load_faq(path, negatives, 0.5, tmp_path)
    assert refit.best("where are the toilets?").entry.id == "toilets"
