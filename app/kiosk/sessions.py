"""Conversation memory: the last few turns of each kiosk session, bounded in count and in time."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from app.prompt import Turn


@dataclass
class Session:
    turns: list[Turn] = field(default_factory=list)
    related: bool = False  # whether the last question was about him
    touched: float = 0.0


class SessionStore:
    """Least-recently-used sessions, each expiring `ttl_s` after its last question."""

    def __init__(self, max_turns: int, ttl_s: float, max_sessions: int, clock: Callable[[], float] = time.monotonic):
        self.max_turns = max_turns
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def get(self, session_id: str) -> Session:
        """The live session of that id, or an empty one."""
        now = self._clock()
        session = self._sessions.get(session_id)
        if session is None or now - session.touched > self.ttl_s:
            self._sessions.pop(session_id, None)
            return Session()
        return session

    def record(self, session_id: str, turn: Turn, related: bool) -> None:
        session = self.get(session_id)
        session.turns = [*session.turns, turn][-self.max_turns :] if self.max_turns else []
        session.related = related
        session.touched = self._clock()
        self._sessions[session_id] = session
        self._sessions.move_to_end(session_id)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
