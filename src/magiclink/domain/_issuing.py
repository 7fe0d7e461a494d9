"""Issuing links: on the guest's request (rate-limited, §9.4) and on the system paths."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

import attrs

from magiclink.domain import _audit
from magiclink.domain._context import GuestContext
from magiclink.domain._enums import InvalidationReason, IssuePath
from magiclink.domain._errors import AccessDenied, BookingClosed, BookingNotFound, RateLimited
from magiclink.domain._policy import (
    generate_raw_token,
    hash_token,
    normalize_email,
    require_id,
    require_optional_id,
)
from magiclink.domain._records import (
    UNSAVED_ID,
    Booking,
    Guest,
    IssuedToken,
    MagicLinkToken,
    NewAuditEntry,
)
from magiclink.domain._transactions import Operation, run
from magiclink.ports._unit_of_work import Transaction

# §9.4: the hourly cap counts the guest-initiated links of the last hour.
_CAP_WINDOW: Final = timedelta(hours=1)
HOURLY_CAP_MESSAGE: Final = "Too many links requested this hour: try again later"

Within = Callable[[Transaction, MagicLinkToken, Booking], None]
"""A step run inside the issuing transaction (the outbox's, §11.2)."""
_Work = Callable[[Transaction], tuple[MagicLinkToken, int]]


@attrs.frozen
class _NewLink:
    """A link about to be issued: its raw secret (mailed once, never stored) and the hash
    stored for it, computed once per request."""

    raw: str = attrs.field(repr=False)
    token_hash: str

    @classmethod
    def generate(cls) -> _NewLink:
        raw = generate_raw_token()
        return cls(raw, hash_token(raw))


class Issuing:
    """Issues links, each with its `CREATE_TOKEN` entry, in one transaction per link."""

    def __init__(self, context: GuestContext) -> None:
        self._context = context

    def request_inbox_link(self, email: str, booking_id: int | None = None) -> IssuedToken:
        """The guest path; see `GuestService.request_inbox_link`."""
        normalized = normalize_email(email)
        booking_id = require_optional_id(booking_id, "booking_id")
        now, link = self._context.clock.now(), _NewLink.generate()
        if booking_id is None and self._in_one_statement():
            issued = self._claim_and_issue(normalized, link, now)
            if issued is not None:
                return issued

        def work(tx: Transaction) -> tuple[MagicLinkToken, int]:
            guest = _unblocked(tx.guests.get_by_email(normalized))
            booking = (
                None
                if booking_id is None
                else open_booking_of(tx, booking_id, normalized, guest_path=True)
            )
            guest, created = _guest_or_new(tx, guest, normalized, now, last_request_at=now)
            if not created:
                self._claim_request(tx, guest, now)
            return self._store(tx, guest, booking, link, now, IssuePath.INBOX)

        return self._issue(work, link, IssuePath.INBOX, normalized)

    def issue_system_link(
        self, email: str, booking_id: int, path: IssuePath, within: Within | None = None
    ) -> IssuedToken:
        """A booking's link on a system path: never rate-limited, `last_request_at` untouched."""
        normalized = normalize_email(email)
        booking_id = require_id(booking_id, "booking_id")
        now, link = self._context.clock.now(), _NewLink.generate()

        def work(tx: Transaction) -> tuple[MagicLinkToken, int]:
            guest = _unblocked(tx.guests.get_by_email(normalized))
            booking = open_booking_of(tx, booking_id, normalized)
            guest, _ = _guest_or_new(tx, guest, normalized, now, last_request_at=None)
            stored = self._store(tx, guest, booking, link, now, path)
            if within is not None:
                within(tx, stored[0], booking)
            return stored

        return self._issue(work, link, path, normalized)

    def _in_one_statement(self) -> bool:
        """True when an inbox link may be issued by `claim_and_add_inbox_token` first: the
        adapter has the statement, and no hourly cap or supersede asks for more than it does."""
        settings = self._context.settings
        return (
            self._context.uow.issues_in_one_statement
            and settings.max_links_per_hour is None
            and not settings.supersede_previous_links
        )

    def _claim_and_issue(self, email: str, link: _NewLink, now: datetime) -> IssuedToken | None:
        """An existing, unblocked guest's inbox link outside the interval in one statement
        (issue 15.1); None, with nothing written, for anyone else (the general path then
        issues or refuses, in its order)."""
        new = self._new_token(link, UNSAVED_ID, None, now)
        entry = _audit.creation(IssuePath.INBOX, now)
        not_after = now - self._context.settings.request_interval

        def work(tx: Transaction) -> tuple[MagicLinkToken, int] | None:
            stored = tx.claim_and_add_inbox_token(email, new, entry, not_after=not_after)
            return None if stored is None else (stored, 0)

        landed = token_stored(link.token_hash)
        stored = run(self._context.uow, Operation(work, one_write=True, landed=landed))
        return None if stored is None else self._issued(stored, link, IssuePath.INBOX, email)

    def _claim_request(self, tx: Transaction, guest: Guest, now: datetime) -> None:
        """The rate limits of the guest path: the interval, then the hourly cap (§9.4).

        The slot claim writes the guest row, which serializes this guest's racing requests;
        the count after it therefore sees every earlier committed link.
        """
        settings = self._context.settings
        not_after = now - settings.request_interval
        if not tx.guests.claim_request_slot(guest.id, now=now, not_after=not_after):
            raise RateLimited()
        cap = settings.max_links_per_hour
        if cap is not None:
            since = now - _CAP_WINDOW
            issued = tx.audit.count_links_issued(guest.id, path=str(IssuePath.INBOX), since=since)
            if issued >= cap:
                raise RateLimited(HOURLY_CAP_MESSAGE)

    def _store(
        self,
        tx: Transaction,
        guest: Guest,
        booking: Booking | None,
        link: _NewLink,
        now: datetime,
        path: IssuePath,
    ) -> tuple[MagicLinkToken, int]:
        """Store the token and its `CREATE_TOKEN` entry (which records the issue `path`, what
        the hourly cap counts); with supersede on, first revoke the pair's earlier live
        links (§5.8). Returns the token and how many it superseded.

        Racing issuers of one pair are serialized before this point: a booking's links by
        the booking row lock (`open_booking_of`), inbox links by the guest row write of the
        rate limit. So the supersede UPDATE of the later one sees the earlier one's token.
        """
        settings = self._context.settings
        booking_id = None if booking is None else booking.id
        superseded = 0
        before: list[NewAuditEntry] = []
        if settings.supersede_previous_links:
            reason = InvalidationReason.SUPERSEDED
            superseded = tx.tokens.invalidate_live(
                guest_id=guest.id, booking_id=booking_id, reason=reason, now=now
            )
            if superseded:
                before.append(
                    _audit.tokens_invalidated(guest.id, booking_id, reason, superseded, now)
                )
        new = self._new_token(link, guest.id, booking, now)
        # The token and its entry: one statement where the adapter can (issue 15.1).
        stored = tx.add_token_with_audit(new, _audit.creation(path, now), before=before)
        return stored, superseded

    def _new_token(
        self, link: _NewLink, guest_id: int, booking: Booking | None, now: datetime
    ) -> MagicLinkToken:
        """The token of `link` to store: the guest's, for `booking` (None: an inbox link)."""
        return MagicLinkToken.new(
            token_hash=link.token_hash,
            guest_id=guest_id,
            booking_id=None if booking is None else booking.id,
            booking_revision=None if booking is None else booking.revision,
            link_generation=0 if booking is None else booking.link_generation,
            expires_at=now + self._context.settings.token_ttl,
            created_at=now,
        )

    def _issue(self, work: _Work, link: _NewLink, path: IssuePath, email: str) -> IssuedToken:
        """Run `work` in its transaction and return the link it issued."""
        stored = run(self._context.uow, Operation(work, landed=token_stored(link.token_hash)))
        return self._issued(stored, link, path, email)

    def _issued(
        self, stored: tuple[MagicLinkToken, int], link: _NewLink, path: IssuePath, email: str
    ) -> IssuedToken:
        """The caller's view of a stored link (its raw secret, once), counted and logged."""
        token, superseded = stored
        self._context.instruments.issued(token, path, superseded)
        return IssuedToken(
            raw=link.raw,
            token_id=token.id,
            guest_id=token.guest_id,
            booking_id=token.booking_id,
            expires_at=token.expires_at,
            email=email,
        )


def token_stored(token_hash: str) -> Callable[[Transaction], tuple[MagicLinkToken, int] | None]:
    """The `landed` check of an issue, exact by key: the token of this attempt's hash (of a
    fresh 256-bit secret, so no other attempt can have stored it) is there. How many links
    it superseded is then not known again: 0."""

    def landed(tx: Transaction) -> tuple[MagicLinkToken, int] | None:
        lookup = tx.tokens.lookup(token_hash)
        return None if lookup is None else (lookup.token, 0)

    return landed


def open_booking_of(
    tx: Transaction, booking_id: int, normalized_email: str, *, guest_path: bool = False
) -> Booking:
    """The booking if it exists, belongs to this e-mail and is open; else the matching error.

    On the guest path (`guest_path`) an unknown booking and a booking of another e-mail give
    the same `AccessDenied`, after the same one statement (§9.5); the system paths keep
    `BookingNotFound`. The row is locked until the transaction ends, so links of one booking
    are issued one at a time and never concurrently with a change of the booking.
    """
    booking = tx.bookings.get(booking_id, for_update=True)
    if booking is None:
        if guest_path:
            raise AccessDenied()
        raise BookingNotFound()
    if booking.guest_email != normalized_email:
        raise AccessDenied()
    if booking.is_closed:
        raise BookingClosed()
    return booking


def _unblocked(guest: Guest | None) -> Guest | None:
    """`guest` unless it is blocked (`AccessDenied`): a blocked address gets no link."""
    if guest is not None and guest.blocked:
        raise AccessDenied()
    return guest


def _guest_or_new(
    tx: Transaction,
    guest: Guest | None,
    normalized_email: str,
    now: datetime,
    last_request_at: datetime | None,
) -> tuple[Guest, bool]:
    """`guest` as found, else the e-mail's row got or created (and whether it was created),
    which a racing request may have blocked meanwhile (`AccessDenied`)."""
    if guest is not None:
        return guest, False
    guest, created = tx.guests.get_or_create(
        normalized_email, now=now, last_request_at=last_request_at
    )
    _unblocked(guest)
    return guest, created


__all__ = ["HOURLY_CAP_MESSAGE", "Issuing", "Within", "open_booking_of", "token_stored"]
