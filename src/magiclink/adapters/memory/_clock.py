"""`ManualClock`: a clock for tests and replays that moves only when told."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from magiclink.domain._policy import require_aware


class ManualClock:
    """A clock that moves only when told: `now()` and `advance(delta)`."""

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The clock's current time."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by `delta` (which may not be negative); the new time."""
        if delta < timedelta(0):
            raise ValueError("ManualClock only moves forward")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to `when` (timezone-aware)."""
        self._now = require_aware(when, "when")


__all__ = ["ManualClock"]
