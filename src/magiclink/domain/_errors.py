"""Every error a magiclink service raises.

The tree::

    MagicLinkError (Exception)            .code, .message; str(error) == error.message
    ├── InvalidToken        UNAUTHORIZED  "Invalid token": malformed or unknown raw token
    ├── TokenExpiredOrUsed  UNAUTHORIZED  "Token expired or used": invalidated, consumed,
    │                                     expired, or its booking closed, moved or gone
    ├── AccessDenied        FORBIDDEN     "Access denied": blocked guest, or a requester
    │                                     that is neither the mentor, the guest nor the system
    ├── RateLimited         TOO_MANY_REQUESTS  a new link requested too soon
    ├── BookingNotFound     NOT_FOUND     the booking id (or uid) is unknown
    ├── BookingClosed       CONFLICT      the booking is cancelled or a no-show
    ├── DuplicateRating     CONFLICT      the booking already has its rating
    ├── InvalidInput        BAD_REQUEST   a value that is malformed, out of range, or naive
    └── StorageError        INTERNAL      the storage failed; .transient says whether a
                                          retry may succeed (lost connection, lock timeout,
                                          serialization failure, deadlock)

No adapter or driver exception ever leaves a service: adapters translate theirs into
`StorageError` (or into the domain conflict they mean) and services wrap anything else.
Messages are one line, say what the caller can do, and never contain a raw token.
"""

from __future__ import annotations

from typing import ClassVar


class MagicLinkError(Exception):
    """Base of every error raised by magiclink; `code` is stable, `message` is for people.

    A subclass names its two class attributes in its bases' keywords:
    `class InvalidToken(MagicLinkError, code="UNAUTHORIZED", default="Invalid token")`.
    """

    code: ClassVar[str] = "INTERNAL"
    default_message: ClassVar[str] = "Internal error"

    def __init_subclass__(cls, *, code: str | None = None, default: str | None = None) -> None:
        super().__init_subclass__()
        if code is not None:
            cls.code = code
        if default is not None:
            cls.default_message = default

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InvalidToken(MagicLinkError, code="UNAUTHORIZED", default="Invalid token"):
    """The raw token is malformed or matches no stored token."""


class TokenExpiredOrUsed(MagicLinkError, code="UNAUTHORIZED", default="Token expired or used"):
    """The token is known but dead: invalidated, consumed, expired, or its booking moved on."""


class AccessDenied(MagicLinkError, code="FORBIDDEN", default="Access denied"):
    """The guest is blocked, or the requester may not act on this booking."""


class RateLimited(
    MagicLinkError,
    code="TOO_MANY_REQUESTS",
    default="Too many requests: wait a minute before asking for a new link",
):
    """The guest asked for a link too soon after the previous one."""


class BookingNotFound(MagicLinkError, code="NOT_FOUND", default="Booking not found"):
    """No booking has this id (or uid)."""


class BookingClosed(
    MagicLinkError, code="CONFLICT", default="Booking is cancelled or marked as a no-show"
):
    """The booking is cancelled or a no-show and accepts no further change."""


class DuplicateRating(
    MagicLinkError, code="CONFLICT", default="This session has already been rated"
):
    """The booking has already been rated; a booking takes one rating."""


class InvalidInput(MagicLinkError, code="BAD_REQUEST", default="Invalid input"):
    """A value given to a service is malformed, out of range, of the wrong kind, or naive."""


class StorageError(MagicLinkError, code="INTERNAL", default="Storage error"):
    """The storage failed. `transient` is true when retrying may succeed."""

    def __init__(self, message: str | None = None, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


__all__ = [
    "AccessDenied",
    "BookingClosed",
    "BookingNotFound",
    "DuplicateRating",
    "InvalidInput",
    "InvalidToken",
    "MagicLinkError",
    "RateLimited",
    "StorageError",
    "TokenExpiredOrUsed",
]
