"""Conversation memory: the last turns of each session, bounded in count and in time."""

from __future__ import annotations

from app.kiosk.sessions import SessionStore
from app.prompt import Turn


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
