"""`InMemoryNotifier`: keeps the messages it is asked to send."""

from __future__ import annotations

import threading

from magiclink.domain._records import LinkMessage
from magiclink.ports._notifier import Notifier


class InMemoryNotifier(Notifier):
    """Keeps every message in `.sent` instead of mailing it."""

    def __init__(self) -> None:
        self.sent: list[LinkMessage] = []
        self._lock = threading.Lock()

    def send(self, message: LinkMessage) -> None:
        """Record the message."""
        with self._lock:
            self.sent.append(message)


__all__ = ["InMemoryNotifier"]
