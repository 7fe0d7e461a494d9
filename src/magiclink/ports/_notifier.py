"""The notifier port: how a freshly issued link reaches the guest's inbox."""

from __future__ import annotations

import abc

from magiclink.domain._records import LinkMessage


class Notifier(abc.ABC):
    """Delivers magic links (by e-mail, in production)."""

    @abc.abstractmethod
    def send(self, message: LinkMessage) -> None:
        """Deliver `message` to `message.to`; raise on failure (the caller decides what it means)."""


__all__ = ["Notifier"]
