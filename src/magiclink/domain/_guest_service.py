"""GuestService: issue, verify, consume and invalidate guest magic links, with their audit.

The façade SPEC §4 names. Each job is a collaborator sharing one `GuestContext`: `Issuing`,
`Verification`, `Invalidation` and `GuestAdmin`; this class validates nothing itself and
adds no behaviour, it only delegates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from magiclink.domain._context import GuestContext
from magiclink.domain._enums import InvalidationReason, IssuePath
from magiclink.domain._guest_admin import GuestAdmin
from magiclink.domain._instruments import Instruments
from magiclink.domain._invalidation import Invalidation
from magiclink.domain._issuing import HOURLY_CAP_MESSAGE, Issuing
from magiclink.domain._link_context import LinkActionContext
from magiclink.domain._records import (
    AuditEntry,
    Booking,
    Guest,
    IssuedToken,
    MagicLinkToken,
    Settings,
    VerifiedToken,
)
from magiclink.domain._verification import Verification
from magiclink.ports._clock import Clock, SystemClock
from magiclink.ports._metrics import Metrics, NullMetrics
from magiclink.ports._repositories import TokenStats
from magiclink.ports._unit_of_work import Transaction, UnitOfWork


class GuestService:
    """The single owner of guest links: every issue, check and invalidation goes through it.

    All methods validate their input first (`InvalidInput`, `InvalidToken`), then run in one
    short transaction of the shared unit of work. Only `MagicLinkError` subclasses escape.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        clock: Clock | None = None,
        settings: Settings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._uow = uow
        self._context = GuestContext(
            uow=uow,
            clock=clock if clock is not None else SystemClock(),
            settings=settings if settings is not None else Settings(),
            instruments=Instruments(metrics if metrics is not None else NullMetrics()),
        )
        self._issuing = Issuing(self._context)
        self._verification = Verification(self._context)
        self._invalidation = Invalidation(self._context)
        self._admin = GuestAdmin(self._context)

    @property
    def clock(self) -> Clock:
        """The clock this service reads (lifecycle services default to it)."""
        return self._context.clock

    @property
    def metrics(self) -> Metrics:
        """The metrics this service records to (lifecycle services default to it)."""
        return self._context.instruments.metrics

    @property
    def settings(self) -> Settings:
        """The settings every operation of this service reads."""
        return self._context.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._context.settings = settings

    # ------------------------------------------------------------------ issuing

    def request_inbox_link(self, email: str, booking_id: int | None = None) -> IssuedToken:
        """Issue a link on the guest's own request (optionally for one of their bookings).

        Checks, first failure raising: malformed e-mail or id → `InvalidInput`; blocked guest →
        `AccessDenied`; unknown booking or booking of another e-mail → the same
        `AccessDenied("Access denied")` after the same statements (§9.5: no enumeration);
        cancelled or no-show booking → `BookingClosed`; a previous request less than
        `Settings.request_interval` ago, or `Settings.max_links_per_hour` guest-initiated links
        already issued in the last hour (§9.4) → `RateLimited`. A refused request writes
        nothing.
        """
        return self._issuing.request_inbox_link(email, booking_id)

    def issue_booking_link(
        self,
        email: str,
        booking_id: int,
        *,
        within: Callable[[Transaction, MagicLinkToken, Booking], None] | None = None,
    ) -> IssuedToken:
        """Issue a booking's link on the system path (booking creation).

        Never rate-limited and never touches `last_request_at`. Raises `InvalidInput`,
        `AccessDenied` (blocked guest, or an e-mail that is not the booking's),
        `BookingNotFound`, `BookingClosed`. `within(tx, token, booking)`, if given, runs in
        the issuing transaction (the outbox records its link there, §11.2); what it raises
        rolls the issue back and propagates.
        """
        return self._issuing.issue_system_link(email, booking_id, IssuePath.BOOKING, within)

    def generate_token_for_rescheduled_booking(self, email: str, booking_id: int) -> str:
        """Issue the fresh link of a rescheduled booking and return its raw token (R2.2).

        The system path: never rate-limited, `last_request_at` untouched, standard TTL.
        Raises like `issue_booking_link`.
        """
        return self._issuing.issue_system_link(email, booking_id, IssuePath.RESCHEDULE).raw

    # ------------------------------------------------------------- verification

    def verify_token(self, raw: str, *, booking_id: int | None = None) -> VerifiedToken:
        """Check a link without changing it (R7); safe for mail scanners and previews.

        Raises, in this order: `InvalidToken` (malformed or unknown), `AccessDenied` (blocked
        guest), `TokenExpiredOrUsed` (invalidated, used, expired, or its booking cancelled,
        no-show, rescheduled or gone). A refusal of a known token is audited. With
        `booking_id`, a token out of that booking's scope raises `AccessDenied` (§9.1).
        """
        return self._verification.verify(raw, booking_id)

    def consume_token(self, raw: str, *, booking_id: int | None = None) -> VerifiedToken:
        """Verify a link (R7) and mark it used, atomically: of racing callers exactly one wins.

        Raises like `verify_token`; a caller that loses the race gets `TokenExpiredOrUsed`.
        Returns the token as it is after consumption (`used_at` set). A scope refusal (§9.1)
        consumes nothing.
        """
        return self._verification.consume(raw, booking_id)

    # ------------------------------------------------------------- invalidation

    def invalidate_token(self, token_id: int, reason: InvalidationReason | str) -> bool:
        """Invalidate one token (audited); False when it is unknown or already invalidated."""
        return self._invalidation.one(token_id, reason)

    def invalidate_tokens_by_booking_id(
        self,
        booking_id: int,
        reason: InvalidationReason | str,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """Invalidate every not-yet-invalidated token of the booking; return how many changed.

        The single entry point of lifecycle invalidation (R5). One UPDATE plus one batched
        INSERT of `INVALIDATE_TOKEN` audit entries (one per guest affected, R8), in the same
        transaction: both land or neither does. An unknown booking, or one with no live
        tokens, returns 0. `metadata` is merged into each audit entry's metadata. A transient
        `StorageError` is retried once; a failure is logged, counted and raised.
        """
        return self._invalidation.of_booking(booking_id, reason, metadata)

    # ------------------------------------------------------------- guests, audit

    def block_guest(self, email: str) -> Guest:
        """Block an address (creating its guest if new): it can neither get nor use links.

        In the block's own transaction every live link of the guest is invalidated (reason
        `guest_blocked`, §9.3) and a `BLOCK_GUEST` entry is written (with its
        `INVALIDATE_TOKEN` entry when links died); logged as `guest.blocked`.
        """
        return self._admin.block(email)

    def unblock_guest(self, email: str) -> Guest | None:
        """Lift a block; the guest, or None when the address is unknown (nothing to lift).

        Revives no link (§9.3): those the block killed stay invalidated. Audited
        (`UNBLOCK_GUEST`) and logged (`guest.unblocked`) when the guest exists.
        """
        return self._admin.unblock(email)

    def get_guest(self, email: str) -> Guest | None:
        """The guest with this e-mail (normalized), or None."""
        return self._admin.get_guest(email)

    def log_access(
        self,
        guest_id: int | None,
        endpoint: str,
        action: str,
        resource_id: str | None = None,
        success: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one entry to the guest access log. `metadata` must be a JSON object."""
        self._admin.log_access(guest_id, endpoint, action, resource_id, success, metadata)

    def token_stats(self) -> TokenStats:
        """Live, expired, used and invalidated token counts, and invalidations by reason."""
        return self._admin.token_stats()

    def count_expired_tokens(self, expired_for: timedelta) -> int:
        """How many tokens expired more than `expired_for` ago (what a purge would delete)."""
        return self._admin.count_expired(expired_for)

    def purge_expired_tokens(
        self,
        expired_for: timedelta,
        *,
        batch_size: int = 1_000,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Delete tokens expired more than `expired_for` ago; return how many were deleted.

        Works in batches of `batch_size`, one DELETE statement and one transaction each, so
        the table is never locked for long: ⌈N / batch_size⌉ statements for N tokens.
        `on_batch(deleted)` is called after each batch (for progress bars). Audit entries
        are kept.
        """
        return self._admin.purge_expired(expired_for, batch_size, on_batch)

    def tokens_for_booking(self, booking_id: int) -> list[MagicLinkToken]:
        """Every token of the booking, oldest first (hashes only, never raw tokens)."""
        return self._admin.tokens_for_booking(booking_id)

    def audit_trail(
        self, *, booking_id: int | None = None, guest_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Audit entries, newest first, of a booking (`resource_id == str(booking_id)`),
        of a guest, or of both."""
        return self._admin.audit_trail(booking_id, guest_id, limit)


def link_context(service: GuestService) -> LinkActionContext:
    """What the link actions of the lifecycle services need of `service` (§8.1): its unit of
    work, clock, verification and instruments, the same objects it uses itself."""
    context = service._context
    return LinkActionContext(
        uow=context.uow,
        clock=context.clock,
        verification=service._verification,
        instruments=context.instruments,
    )


__all__ = ["HOURLY_CAP_MESSAGE", "GuestService", "link_context"]
