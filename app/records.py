"""Usage records and feedback in SQLite (WAL): committed before the response is sent, safe on kill -9.

By default no visitor text is stored: a request row holds its route, timings, gate score and token count.
The question itself is stored only when staff turn `KIOSK_STORE_QUESTIONS` on.
"""

from __future__ import annotations

import csv
import datetime
import io
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    route TEXT NOT NULL,
    related INTEGER NOT NULL,
    relevance REAL NOT NULL,
    latency_ms REAL NOT NULL,
    tokens INTEGER NOT NULL,
    question TEXT
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL REFERENCES requests(request_id),
    ts REAL NOT NULL,
    helpful INTEGER NOT NULL,
    comment TEXT
);
CREATE INDEX IF NOT EXISTS requests_day ON requests(day);
"""


@dataclass(frozen=True)
class RequestRecord:
    request_id: str
    route: str
    related: bool
    relevance: float
    latency_ms: float
    tokens: int
    question: str | None = None


class Records:
    """One connection guarded by a lock; every write is its own committed transaction."""

    def __init__(self, path: Path, store_questions: bool = False) -> None:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        self.store_questions = store_questions
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed row survives a crash of the machine too
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_request(self, r: RequestRecord) -> None:
        now = time.time()
        day = datetime.datetime.fromtimestamp(now, datetime.UTC).date().isoformat()
        question = r.question if self.store_questions else None
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (r.request_id, now, day, r.route, int(r.related), r.relevance, r.latency_ms, r.tokens, question),
            )

    def add_feedback(self, request_id: str, helpful: bool, comment: str | None) -> bool:
        """False when the request id is unknown."""
        with self._lock:
            known = self._db.execute("SELECT 1 FROM requests WHERE request_id = ?", (request_id,)).fetchone()
            if not known:
                return False
            self._db.execute(
                "INSERT INTO feedback (request_id, ts, helpful, comment) VALUES (?, ?, ?, ?)",
                (request_id, time.time(), int(helpful), comment),
            )
        return True

    def stats(self) -> dict[str, Any]:
        with self._lock:
            per_day = self._db.execute(
                "SELECT day, COUNT(*), AVG(related) FROM requests GROUP BY day ORDER BY day DESC LIMIT 60"
            ).fetchall()
            routes = self._db.execute("SELECT route, COUNT(*) FROM requests GROUP BY route").fetchall()
            latencies = [row[0] for row in self._db.execute("SELECT latency_ms FROM requests ORDER BY latency_ms")]
            total, related = self._db.execute("SELECT COUNT(*), COALESCE(SUM(related), 0) FROM requests").fetchone()
            fb = self._db.execute("SELECT COUNT(*), COALESCE(SUM(helpful), 0) FROM feedback").fetchone()
        return {
            "questions_total": total,
            "share_related": round(related / total, 4) if total else None,
            "questions_per_day": [{"day": d, "questions": n, "share_related": round(s or 0, 4)} for d, n, s in per_day],
            "routes": dict(routes),
            "latency_ms": {f"p{q}": _percentile(latencies, q) for q in (50, 95, 99)},
            "feedback": {"total": fb[0], "helpful": fb[1], "not_helpful": fb[0] - fb[1]},
        }

    def feedback_csv(self) -> str:
        with self._lock:
            rows = self._db.execute(
                "SELECT f.ts, f.request_id, r.route, f.helpful, f.comment FROM feedback f "
                "JOIN requests r USING (request_id) ORDER BY f.ts"
            ).fetchall()
        buf = io.StringIO()
        # Every field quoted: a carriage return in a comment cannot start a row of its own.
        writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(["time_utc", "request_id", "route", "helpful", "comment"])
        for ts, rid, route, helpful, comment in rows:
            stamp = datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds")
            writer.writerow([stamp, rid, route, bool(helpful), spreadsheet_safe(comment or "")])
        return buf.getvalue()


def spreadsheet_safe(cell: str) -> str:
    """OWASP's rule against CSV injection: a cell a spreadsheet would read as a formula gets a leading quote."""
    return "'" + cell if cell.startswith(("=", "+", "-", "@", "\t", "\r")) else cell


def _percentile(sorted_values: list[float], q: int) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1)))
    return round(sorted_values[index], 1)
