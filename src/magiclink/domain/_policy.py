"""Pure rules: input validation, token format and hashing, and the verification verdict."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

from magiclink.domain._addresses import normalize_address
from magiclink.domain._enums import BookingStatus, RefusalReason
from magiclink.domain._errors import InvalidInput
from magiclink.domain._records import Booking, MagicLinkToken, TokenLookup

RAW_TOKEN_BYTES = 32
RAW_TOKEN_LENGTH = 2 * RAW_TOKEN_BYTES
MAX_ID = 2**63 - 1
MAX_TEXT_ID_LENGTH = 255

_RAW_TOKEN = re.compile(r"[0-9a-f]{64}")


def generate_raw_token() -> str:
    """32 random bytes from `secrets`, as 64 lowercase hex characters."""
    return secrets.token_hex(RAW_TOKEN_BYTES)


def is_well_formed(raw: object) -> bool:
    """True when `raw` looks like a raw token (64 lowercase hex characters)."""
    return (
        isinstance(raw, str)
        and len(raw) == RAW_TOKEN_LENGTH
        and _RAW_TOKEN.fullmatch(raw) is not None
    )


def hash_token(raw: str) -> str:
    """SHA-256 hex digest of a raw token: the only form in which a token is stored."""
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


def normalize_email(email: object) -> str:
    """The normal form of an e-mail address, or `InvalidInput` (SPEC §9.2; `_addresses`)."""
    return normalize_address(email)


def is_encodable(text: str) -> bool:
    """True when `text` is valid Unicode that every storage can hold (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_aware(value: object, name: str) -> datetime:
    """`value` converted to UTC if it is a timezone-aware datetime, else `InvalidInput`.

    Every time inside the library is UTC, whatever zone the caller used (SPEC §2), so both
    adapters return the same records for the same input.
    """
    if not isinstance(value, datetime):
        raise InvalidInput(f"{name} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} must be timezone-aware (naive datetimes are refused)")
    try:
        return value.astimezone(UTC)
    except OverflowError as error:
        raise InvalidInput(f"{name} is out of range") from error


def require_id(value: object, name: str) -> int:
    """Return `value` if it is a positive integer id that storage can hold."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise InvalidInput(f"{name} must be a positive integer")
    return value


def require_optional_id(value: object, name: str) -> int | None:
    """Like `require_id`, but None is allowed."""
    return None if value is None else require_id(value, name)


def require_text(value: object, name: str, *, max_length: int, allow_empty: bool = False) -> str:
    """Return `value` if it is a string within bounds and free of NUL characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    if not allow_empty and not value.strip():
        raise InvalidInput(f"{name} must not be empty")
    if len(value) > max_length:
        raise InvalidInput(f"{name} must be at most {max_length} characters")
    if "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters")
    if not is_encodable(value):
        raise InvalidInput(f"{name} must be valid Unicode text")
    return value


def require_duration(value: object, name: str) -> timedelta:
    """Return `value` if it is a positive timedelta."""
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidInput(f"{name} must be a positive duration")
    return value


def refusal_reason(lookup: TokenLookup, now: datetime) -> RefusalReason | None:
    """Why verification must refuse this token at `now`, or None when it is live (R7, §5.4).

    The order is the contract: a blocked guest first (`AccessDenied`), then the token's own
    state, then its booking (closed, moved to a new revision, or gone).
    """
    if lookup.guest.blocked:
        return RefusalReason.BLOCKED
    return token_refusal(
        lookup.token,
        lookup.booking_status,
        lookup.booking_revision,
        now,
        booking_link_generation=lookup.booking_link_generation,
    )


def booking_refusal(
    token: MagicLinkToken, booking: Booking | None, now: datetime
) -> RefusalReason | None:
    """`token_refusal` against a booking as read (e.g. locked) in this transaction."""
    if booking is None:
        return token_refusal(token, None, None, now, booking_link_generation=None)
    return token_refusal(
        token,
        booking.status,
        booking.revision,
        now,
        booking_link_generation=booking.link_generation,
    )


def token_refusal(
    token: MagicLinkToken,
    booking_status: BookingStatus | None,
    booking_revision: int | None,
    now: datetime,
    *,
    booking_link_generation: int | None,
) -> RefusalReason | None:
    """Why the token itself is dead at `now`, or None when it is live; its guest aside.

    The one statement of the liveness rule: verification uses it through `refusal_reason`,
    and an adapter whose storage is Python objects uses it for the conditional consume.
    A booking's link is dead once an event of the booking committed after it was issued
    (§8.4: the booking's link generation moved past the token's), whether or not the batch
    invalidation after the event ran.
    """
    if token.invalidated:
        return RefusalReason.INVALIDATED
    if token.used_at is not None:
        return RefusalReason.USED
    if token.expires_at <= now:
        return RefusalReason.EXPIRED
    if token.booking_id is not None:
        if booking_status is None:
            return RefusalReason.BOOKING_MISSING
        if booking_status.is_closed:
            return RefusalReason.BOOKING_CLOSED
        if token.booking_revision is not None and token.booking_revision != booking_revision:
            return RefusalReason.BOOKING_RESCHEDULED
        if token.link_generation != booking_link_generation:
            return RefusalReason.LINKS_REVOKED
    return None


__all__ = [
    "MAX_ID",
    "MAX_TEXT_ID_LENGTH",
    "RAW_TOKEN_BYTES",
    "RAW_TOKEN_LENGTH",
    "booking_refusal",
    "generate_raw_token",
    "hash_token",
    "is_encodable",
    "is_well_formed",
    "normalize_email",
    "refusal_reason",
    "require_aware",
    "require_duration",
    "require_id",
    "require_optional_id",
    "require_text",
    "token_refusal",
]
