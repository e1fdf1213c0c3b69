"""Usage records and feedback in SQLite: nothing committed is lost on kill -9; feedback needs a known request."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

from app.records import Records, RequestRecord
from tests.conftest import ROOT

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
