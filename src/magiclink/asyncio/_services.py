"""The async services: each method awaits its sync twin through the greenlet bridge.

No service logic lives here. Every method is one line, `await run(<sync method>, ...)`, with
the twin's exact signature (a test compares them), so names, arguments, results and errors
are the domain's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from magiclink._bootstrap import build_services
from magiclink.asyncio._bridge import run
from magiclink.asyncio._notifier import AsyncNotifier, _BridgedNotifier
from magiclink.asyncio._unit_of_work import AsyncSqlAlchemyUnitOfWork
from magiclink.domain._booking_service import DEFAULT_DURATION, BookingService
from magiclink.domain._enums import IncidentType, InvalidationReason
from magiclink.domain._guest_service import GuestService
from magiclink.domain._quality import QualityRepository
from magiclink.domain._rating_service import RatingService
from magiclink.domain._records import (
    AuditEntry,
    Booking,
    BookingOutcome,
    Guest,
    Incident,
    IssuedToken,
    MagicLinkToken,
    Rating,
    Requester,
    RescheduleOutcome,
    Settings,
    VerifiedToken,
)
from magiclink.ports._clock import Clock
from magiclink.ports._metrics import Metrics
from magiclink.ports._repositories import TokenStats
from magiclink.ports._unit_of_work import Transaction, UnitOfWork


class AsyncGuestService:
    """`GuestService` as coroutines: issuing, verification, invalidation, admin."""

    def __init__(self, sync: GuestService) -> None:
        self._sync = sync

    @property
    def clock(self) -> Clock:
        """The clock the service reads."""
        return self._sync.clock

    @property
    def metrics(self) -> Metrics:
        """The metrics the service records."""
        return self._sync.metrics

    @property
    def settings(self) -> Settings:
        """The service's settings (TTL, request interval, link URL)."""
        return self._sync.settings

    async def request_inbox_link(self, email: str, booking_id: int | None = None) -> IssuedToken:
        """See `GuestService.request_inbox_link`."""
        return await run(self._sync.request_inbox_link, email, booking_id)

    async def issue_booking_link(
        self,
        email: str,
        booking_id: int,
        *,
        within: Callable[[Transaction, MagicLinkToken, Booking], None] | None = None,
    ) -> IssuedToken:
        """See `GuestService.issue_booking_link` (`within` runs inside the bridge)."""
        return await run(self._sync.issue_booking_link, email, booking_id, within=within)

    async def generate_token_for_rescheduled_booking(self, email: str, booking_id: int) -> str:
        """See `GuestService.generate_token_for_rescheduled_booking`."""
        return await run(self._sync.generate_token_for_rescheduled_booking, email, booking_id)

    async def verify_token(self, raw: str, *, booking_id: int | None = None) -> VerifiedToken:
        """See `GuestService.verify_token`."""
        return await run(self._sync.verify_token, raw, booking_id=booking_id)

    async def consume_token(self, raw: str, *, booking_id: int | None = None) -> VerifiedToken:
        """See `GuestService.consume_token`."""
        return await run(self._sync.consume_token, raw, booking_id=booking_id)

    async def invalidate_token(self, token_id: int, reason: InvalidationReason | str) -> bool:
        """See `GuestService.invalidate_token`."""
        return await run(self._sync.invalidate_token, token_id, reason)

    async def invalidate_tokens_by_booking_id(
        self,
        booking_id: int,
        reason: InvalidationReason | str,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """See `GuestService.invalidate_tokens_by_booking_id`."""
        return await run(
            self._sync.invalidate_tokens_by_booking_id, booking_id, reason, metadata=metadata
        )

    async def block_guest(self, email: str) -> Guest:
        """See `GuestService.block_guest`."""
        return await run(self._sync.block_guest, email)

    async def unblock_guest(self, email: str) -> Guest | None:
        """See `GuestService.unblock_guest`."""
        return await run(self._sync.unblock_guest, email)

    async def get_guest(self, email: str) -> Guest | None:
        """See `GuestService.get_guest`."""
        return await run(self._sync.get_guest, email)

    async def log_access(
        self,
        guest_id: int | None,
        endpoint: str,
        action: str,
        resource_id: str | None = None,
        success: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """See `GuestService.log_access`."""
        return await run(
            self._sync.log_access, guest_id, endpoint, action, resource_id, success, metadata
        )

    async def token_stats(self) -> TokenStats:
        """See `GuestService.token_stats`."""
        return await run(self._sync.token_stats)

    async def count_expired_tokens(self, expired_for: timedelta) -> int:
        """See `GuestService.count_expired_tokens`."""
        return await run(self._sync.count_expired_tokens, expired_for)

    async def purge_expired_tokens(
        self,
        expired_for: timedelta,
        *,
        batch_size: int = 1000,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """See `GuestService.purge_expired_tokens`."""
        return await run(
            self._sync.purge_expired_tokens, expired_for, batch_size=batch_size, on_batch=on_batch
        )

    async def tokens_for_booking(self, booking_id: int) -> list[MagicLinkToken]:
        """See `GuestService.tokens_for_booking`."""
        return await run(self._sync.tokens_for_booking, booking_id)

    async def audit_trail(
        self, *, booking_id: int | None = None, guest_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """See `GuestService.audit_trail`."""
        return await run(
            self._sync.audit_trail, booking_id=booking_id, guest_id=guest_id, limit=limit
        )


class AsyncBookingService:
    """`BookingService` as coroutines: the booking lifecycle and its link actions."""

    def __init__(self, sync: BookingService, notifier: AsyncNotifier) -> None:
        self._sync = sync
        self._notifier = notifier

    @property
    def notifier(self) -> AsyncNotifier:
        """The async notifier this service mails links through."""
        return self._notifier

    async def get_booking(self, booking_id: int) -> Booking | None:
        """See `BookingService.get_booking`."""
        return await run(self._sync.get_booking, booking_id)

    async def book_session(
        self,
        mentor_id: int,
        guest_email: str,
        start_time: datetime,
        duration: timedelta = DEFAULT_DURATION,
        uid: str | None = None,
    ) -> BookingOutcome:
        """See `BookingService.book_session`."""
        return await run(self._sync.book_session, mentor_id, guest_email, start_time, duration, uid)

    async def cancel_session(
        self, booking_id: int, reason: str, cancelled_by: str, requester: Requester
    ) -> Booking:
        """See `BookingService.cancel_session`."""
        return await run(self._sync.cancel_session, booking_id, reason, cancelled_by, requester)

    async def mark_session_as_no_show(self, booking_id: int, requester: Requester) -> Booking:
        """See `BookingService.mark_session_as_no_show`."""
        return await run(self._sync.mark_session_as_no_show, booking_id, requester)

    async def mark_session_complete(self, booking_id: int) -> Booking:
        """See `BookingService.mark_session_complete`."""
        return await run(self._sync.mark_session_complete, booking_id)

    async def reschedule_session(
        self, booking_id: int, new_start: datetime, requester: Requester
    ) -> RescheduleOutcome:
        """See `BookingService.reschedule_session`."""
        return await run(self._sync.reschedule_session, booking_id, new_start, requester)

    async def cancel_with_link(
        self, raw: str, reason: str, *, booking_id: int | None = None
    ) -> Booking:
        """See `BookingService.cancel_with_link`."""
        return await run(self._sync.cancel_with_link, raw, reason, booking_id=booking_id)

    async def reschedule_with_link(
        self, raw: str, new_start: datetime, *, booking_id: int | None = None
    ) -> RescheduleOutcome:
        """See `BookingService.reschedule_with_link`."""
        return await run(self._sync.reschedule_with_link, raw, new_start, booking_id=booking_id)


class AsyncRatingService:
    """`RatingService` as coroutines."""

    def __init__(self, sync: RatingService) -> None:
        self._sync = sync

    async def get_rating(self, booking_id: int) -> Rating | None:
        """See `RatingService.get_rating`."""
        return await run(self._sync.get_rating, booking_id)

    async def create_rating(
        self, booking_id: int, student_profile_id: str, rating: int, feedback: str | None = None
    ) -> Rating:
        """See `RatingService.create_rating`."""
        return await run(self._sync.create_rating, booking_id, student_profile_id, rating, feedback)

    async def rate_with_link(
        self, raw: str, rating: int, feedback: str | None = None, *, booking_id: int | None = None
    ) -> Rating:
        """See `RatingService.rate_with_link`."""
        return await run(self._sync.rate_with_link, raw, rating, feedback, booking_id=booking_id)


class AsyncQualityRepository:
    """`QualityRepository` as coroutines: incidents."""

    def __init__(self, sync: QualityRepository) -> None:
        self._sync = sync

    async def create_incident(
        self,
        student_profile_id: str,
        booking_uid: str,
        type: IncidentType | str,
        description: str,
        reported_by_user_id: int | None = None,
    ) -> Incident:
        """See `QualityRepository.create_incident`."""
        return await run(
            self._sync.create_incident,
            student_profile_id,
            booking_uid,
            type,
            description,
            reported_by_user_id,
        )

    async def report_with_link(
        self,
        raw: str,
        type: IncidentType | str,
        description: str,
        *,
        booking_id: int | None = None,
    ) -> Incident:
        """See `QualityRepository.report_with_link`."""
        return await run(self._sync.report_with_link, raw, type, description, booking_id=booking_id)


@attrs.frozen
class AsyncServices:
    """The four async services of one host, over one unit of work."""

    guests: AsyncGuestService
    bookings: AsyncBookingService
    ratings: AsyncRatingService
    quality: AsyncQualityRepository


def build_async_services(
    uow: AsyncSqlAlchemyUnitOfWork | UnitOfWork,
    *,
    notifier: AsyncNotifier,
    clock: Clock | None = None,
    settings: Settings | None = None,
    metrics: Metrics | None = None,
) -> AsyncServices:
    """Wire the async services: `magiclink.build_services` over the sync unit of work, each
    service wrapped in its async shell.

    `uow` is an `AsyncSqlAlchemyUnitOfWork` or any sync `UnitOfWork` that does no I/O of its
    own (the in-memory one, as it is). `notifier` is awaited through the bridge after the
    issuing transaction committed. Nothing here connects to storage.
    """
    sync_uow = uow.sync if isinstance(uow, AsyncSqlAlchemyUnitOfWork) else uow
    services = build_services(
        sync_uow,
        notifier=_BridgedNotifier(notifier),
        clock=clock,
        settings=settings,
        metrics=metrics,
    )
    return AsyncServices(
        guests=AsyncGuestService(services.guests),
        bookings=AsyncBookingService(services.bookings, notifier),
        ratings=AsyncRatingService(services.ratings),
        quality=AsyncQualityRepository(services.quality),
    )


__all__ = [
    "AsyncBookingService",
    "AsyncGuestService",
    "AsyncQualityRepository",
    "AsyncRatingService",
    "AsyncServices",
    "build_async_services",
]
