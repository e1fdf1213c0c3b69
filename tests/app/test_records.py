"""Usage records and feedback in SQLite: nothing committed is lost on kill -9; feedback needs a known request."""

from __future__ import annotations

import csv
import io
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
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=str(ROOT), db=str(db))], stdout=subprocess.PIPE, text=True
    )
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


def test_the_feedback_export_cannot_inject_formulas_or_rows(tmp_path):
    records = Records(tmp_path / "r.sqlite3")
    records.add_request(RequestRecord("a" * 32, "curated", True, 0.9, 3.0, 0))
    comments = [
        '=HYPERLINK("http://evil.example","click")',
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "fine\r=1+1",
        'said "hi"\nthen left',
        "fine",
    ]
    for comment in comments:
        assert records.add_feedback("a" * 32, True, comment)
    text = records.feedback_csv()
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + len(comments)  # no comment made a row of its own
    exported = [row[4] for row in rows[1:]]
    assert exported[:6] == ["'" + c for c in comments[:6]]  # inert: a spreadsheet shows them as text
    assert exported[6:] == comments[6:]
    assert '"fine\r=1+1"' in text and text.startswith('"time_utc","request_id"') and '"True"' in text  # all quoted
