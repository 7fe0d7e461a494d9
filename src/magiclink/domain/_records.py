"""Frozen records of the domain and the results services return.

Records are plain values: adapters build them from rows explicitly, services never mutate
them (they ask a repository for the change and get a new record back).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import attrs

from magiclink.domain._enums import BookingStatus, IncidentType, InvalidationReason
from magiclink.domain._errors import InvalidInput

UNSAVED_ID: Final = 0
"""The id of a record not stored yet. A repository's `add` takes a record with this id and
returns it with the id storage assigned (`tx.bookings.add(Booking(id=UNSAVED_ID, ...))`)."""


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class Guest:
    """A person known only by e-mail (`normalized_email`: stripped, lower-cased, unique)."""

    id: int
    normalized_email: str
    blocked: bool
    last_request_at: datetime | None
    created_at: datetime


@attrs.frozen
class Booking:
    """A mentoring session between a mentor and a prospective student (the guest)."""

    id: int
    uid: str
    mentor_id: int
    guest_email: str
    start_time: datetime
    end_time: datetime
    status: BookingStatus
    revision: int
    # §8.4: advanced by every event (cancel, no-show, reschedule, rating, incident) in the
    # event's own transaction; a link recording an older generation is refused.
    link_generation: int = 0
    operation_id: str | None = None
    """The service call that last wrote the row (added it, or changed its status or times):
    its exact `landed` check (issue 12.2)."""

    @property
    def is_closed(self) -> bool:
        """True when cancelled or a no-show: its links are dead and it accepts no change."""
        return self.status.is_closed


@attrs.frozen
class MagicLinkToken:
    """The stored side of a magic link. The raw token itself is never stored."""

    id: int
    token_hash: str
    guest_id: int
    booking_id: int | None
    booking_revision: int | None
    expires_at: datetime
    used_at: datetime | None
    invalidated: bool
    invalidation_reason: InvalidationReason | None
    created_at: datetime
    # §8.4: its booking's link generation when it was issued (0 for an inbox link).
    link_generation: int = 0

    @classmethod
    def new(
        cls,
        *,
        token_hash: str,
        guest_id: int,
        booking_id: int | None,
        booking_revision: int | None,
        expires_at: datetime,
        created_at: datetime,
        link_generation: int = 0,
        token_id: int = UNSAVED_ID,
    ) -> MagicLinkToken:
        """A new, live token: never used, never invalidated; `UNSAVED_ID` until stored."""
        return cls(
            token_id,
            token_hash,
            guest_id,
            booking_id,
            booking_revision,
            expires_at,
            None,
            False,
            None,
            created_at,
            link_generation,
        )


@attrs.frozen
class AuditEntry:
    """One row of the guest access log."""

    id: int
    guest_id: int | None
    endpoint: str
    action: str
    resource_id: str | None
    success: bool
    metadata: Mapping[str, Any] = attrs.field(converter=_frozen_mapping)
    created_at: datetime
    operation_id: str | None = None
    """The operation that wrote it (see `NewAuditEntry.operation_id`)."""


@attrs.frozen
class NewAuditEntry:
    """An audit entry about to be written (storage assigns the id)."""

    guest_id: int | None
    endpoint: str
    action: str
    resource_id: str | None
    success: bool
    metadata: Mapping[str, Any]
    created_at: datetime
    operation_id: str | None = None
    """A key unique to the service call that writes the entry, by which that call finds its
    own write again after a commit whose outcome is unknown (`AuditLog.by_operation`)."""

    def counted(self, guest_id: int, count: int) -> NewAuditEntry:
        """This entry for one guest of a batch: `guest_id` set, `count` last in its metadata
        (`Transaction.invalidate_booking_with_audit` writes one per guest)."""
        return self._about(guest_id, self.resource_id, {**self.metadata, "count": count})

    def of_token(self, token: MagicLinkToken) -> NewAuditEntry:
        """This entry about `token` (`CONSUME_TOKEN`, `CREATE_TOKEN`): its guest, its id first
        in the metadata, and its booking as the resource unless the template names one. The
        one statements of `Transaction.consume_if_accepted` and `add_token_with_audit` fill in
        the same three from the row they write."""
        resource_id = self.resource_id
        if resource_id is None and token.booking_id is not None:
            resource_id = str(token.booking_id)
        return self._about(token.guest_id, resource_id, {"token_id": token.id, **self.metadata})

    def _about(
        self, guest_id: int | None, resource_id: str | None, metadata: Mapping[str, Any]
    ) -> NewAuditEntry:
        """This entry with another guest, resource and metadata (not `attrs.evolve`: µs)."""
        return NewAuditEntry(
            guest_id,
            self.endpoint,
            self.action,
            resource_id,
            self.success,
            metadata,
            self.created_at,
            self.operation_id,
        )


@attrs.frozen
class Rating:
    """A student's 1-5 score of one booking; at most one per booking."""

    id: int
    booking_id: int
    student_profile_id: str
    rating: int
    feedback: str | None
    created_at: datetime
    operation_id: str | None = None
    """The service call that stored it: its exact `landed` check (issue 12.2)."""


@attrs.frozen
class Incident:
    """A report about a session, found by booking uid (`booking_id` is None when unknown)."""

    id: int
    booking_uid: str
    booking_id: int | None
    student_profile_id: str
    type: IncidentType
    description: str
    reported_by_user_id: int | None
    created_at: datetime
    operation_id: str | None = None
    """The service call that stored it: its exact `landed` check (issue 12.2)."""


@attrs.frozen
class TokenLookup:
    """What verification needs about one token, read in one go.

    `booking_status`, `booking_revision` and `booking_link_generation` describe the token's
    booking as stored now; all are None when the token has no booking or when that booking
    no longer exists.
    """

    token: MagicLinkToken
    guest: Guest
    booking_status: BookingStatus | None
    booking_revision: int | None
    booking_link_generation: int | None


@attrs.frozen
class LinkMessage:
    """A magic link to mail: the notifier's one message."""

    to: str
    url: str = attrs.field(repr=False)
    booking_id: int | None
    kind: str
    # For the mail's wording (§11.1): the session's start and how long the link lives.
    starts_at: datetime | None = None
    valid_for: timedelta | None = None


@attrs.frozen
class Requester:
    """Who asks for a booking change: a user id, an e-mail, or the platform itself."""

    user_id: int | None = None
    email: str | None = None
    is_system: bool = False

    @classmethod
    def system(cls) -> Requester:
        """The platform itself (a scheduler, an admin job): allowed on every booking."""
        return cls(is_system=True)


# §9.6: a link lives at most a day (NIST 800-63B-4 for e-mailed codes); the request interval
# is at most a day. Both bounds keep every computed time far inside datetime's range.
_MAX_TOKEN_TTL = timedelta(hours=24)
_MAX_REQUEST_INTERVAL = timedelta(days=1)
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _token_ttl(_instance: object, attribute: attrs.Attribute[timedelta], value: object) -> None:
    if not isinstance(value, timedelta) or not timedelta(0) < value <= _MAX_TOKEN_TTL:
        raise InvalidInput(f"{attribute.name} must be a timedelta above zero and at most 24 hours")


def _request_interval(
    _instance: object, attribute: attrs.Attribute[timedelta], value: object
) -> None:
    if not isinstance(value, timedelta) or not timedelta(0) <= value <= _MAX_REQUEST_INTERVAL:
        raise InvalidInput(f"{attribute.name} must be a timedelta from zero to one day")


def _link_base_url(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    """An absolute https URL (http on loopback only), no user info, fragment or `token` (§9.6)."""
    name = attribute.name
    if not isinstance(value, str) or not value or not value.isprintable() or " " in value:
        raise InvalidInput(f"{name} must be an absolute URL without spaces")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        raise InvalidInput(f"{name} is not a valid URL") from error
    scheme = parts.scheme.lower()
    if not host or scheme not in {"https", "http"}:
        raise InvalidInput(f"{name} must be an absolute https URL")
    if scheme == "http" and host not in _LOOPBACK_HOSTS:
        raise InvalidInput(f"{name} may use http only for localhost, 127.0.0.1 or ::1")
    if "@" in parts.netloc:
        raise InvalidInput(f"{name} must not contain user info")
    if "#" in value:
        raise InvalidInput(f"{name} must not have a fragment")
    keys = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    if "token" in keys:
        raise InvalidInput(f"{name} must not have a token query parameter")


def _optional_positive_int(
    _instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"{attribute.name} must be a positive integer or None")


def _grace(_instance: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidInput(f"{attribute.name} must be a timedelta of zero or more")


@attrs.frozen
class Settings:
    """Tunables of the library. The defaults keep the original plan's behaviour."""

    token_ttl: timedelta = attrs.field(default=timedelta(minutes=15), validator=_token_ttl)
    request_interval: timedelta = attrs.field(
        default=timedelta(seconds=60), validator=_request_interval
    )
    link_base_url: str = attrs.field(
        default="http://localhost:8000/magic-link", validator=_link_base_url
    )
    revoke_on_reuse: bool = False
    supersede_previous_links: bool = False
    # §11.2: book and reschedule store a mail intent for the outbox worker instead of mailing.
    mail_via_outbox: bool = False
    # §9.4: at most this many guest-initiated links per guest in any hour (None: no cap).
    max_links_per_hour: int | None = attrs.field(default=5, validator=_optional_positive_int)
    # §9.8: with revoke_on_reuse, a link presented again this soon after its consumption is
    # a double click: refused and audited, but nothing is revoked.
    reuse_grace: timedelta = attrs.field(default=timedelta(seconds=10), validator=_grace)

    def link_url(self, raw_token: str) -> str:
        """The URL to mail: the base URL with the raw token in its `token` query parameter."""
        separator = "&" if "?" in self.link_base_url else "?"
        return f"{self.link_base_url}{separator}token={raw_token}"


@attrs.frozen
class IssuedToken:
    """A freshly issued link. `raw` is shown once, to be mailed; it is never stored."""

    raw: str = attrs.field(repr=False)
    token_id: int
    guest_id: int
    booking_id: int | None
    expires_at: datetime
    # §9.2: the normalized address the link is for; every message goes to it.
    email: str = ""


@attrs.frozen
class VerifiedToken:
    """A token that passed verification, with its guest."""

    token: MagicLinkToken
    guest: Guest


@attrs.frozen
class BookingOutcome:
    """Result of booking a session: the stored booking and whether its first link was mailed."""

    booking: Booking
    link_sent: bool


@attrs.frozen
class RescheduleOutcome:
    """Result of a reschedule: the moved booking, and whether a new link was issued and mailed."""

    booking: Booking
    link_issued: bool
    link_sent: bool


@attrs.frozen
class InvalidationResult:
    """What one batch invalidation changed: newly invalidated tokens per guest id."""

    per_guest: Mapping[int, int]

    @property
    def count(self) -> int:
        """How many tokens changed."""
        return sum(self.per_guest.values())


__all__ = [
    "UNSAVED_ID",
    "AuditEntry",
    "Booking",
    "BookingOutcome",
    "Guest",
    "Incident",
    "InvalidationReason",
    "InvalidationResult",
    "IssuedToken",
    "LinkMessage",
    "MagicLinkToken",
    "NewAuditEntry",
    "Rating",
    "Requester",
    "RescheduleOutcome",
    "Settings",
    "TokenLookup",
    "VerifiedToken",
]
