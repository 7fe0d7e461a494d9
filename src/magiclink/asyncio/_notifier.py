"""The async notifier port, its in-memory adapter, and the shim the sync domain calls."""

from __future__ import annotations

import abc

from magiclink.asyncio._bridge import wait
from magiclink.domain._records import LinkMessage
from magiclink.ports._notifier import Notifier


class AsyncNotifier(abc.ABC):
    """Delivers magic links from an asyncio host (by e-mail, in production)."""

    @abc.abstractmethod
    async def send(self, message: LinkMessage) -> None:
        """Deliver `message` to `message.to`; raise on failure (the caller decides what it means)."""


class AsyncInMemoryNotifier(AsyncNotifier):
    """Keeps every message in `.sent` instead of mailing it (like `InMemoryNotifier`)."""

    def __init__(self) -> None:
        self.sent: list[LinkMessage] = []

    async def send(self, message: LinkMessage) -> None:
        """Record the message."""
        self.sent.append(message)


class _BridgedNotifier(Notifier):
    """The sync `Notifier` the domain calls: awaits the async notifier through the bridge.

    The domain mails after the issuing transaction committed, so no transaction (and no
    in-memory lock) is held while the host's `send` awaits.
    """

    def __init__(self, notifier: AsyncNotifier) -> None:
        self._notifier = notifier

    def send(self, message: LinkMessage) -> None:
        wait(self._notifier.send(message))


__all__ = ["AsyncInMemoryNotifier", "AsyncNotifier"]
