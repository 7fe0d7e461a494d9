"""The async services: each method awaits its sync twin through the greenlet bridge.

No service logic lives here. Every method is one `Twin` of its sync method, a coroutine
function of the twin's exact signature that awaits `run(<sync method>, ...)` (a test
compares them), so names, arguments, results and errors are the domain's own.
"""

from __future__ import annotations

import attrs

from magiclink._bootstrap import build_services
from magiclink.asyncio._bridge import Shell, Twin
from magiclink.asyncio._notifier import AsyncNotifier, _BridgedNotifier
from magiclink.asyncio._unit_of_work import AsyncSqlAlchemyUnitOfWork
from magiclink.domain._booking_service import BookingService
from magiclink.domain._guest_service import GuestService
from magiclink.domain._quality import QualityRepository
from magiclink.domain._rating_service import RatingService
from magiclink.domain._records import Settings
from magiclink.ports._clock import Clock
from magiclink.ports._metrics import Metrics
from magiclink.ports._unit_of_work import UnitOfWork


class AsyncGuestService(Shell[GuestService]):
    """`GuestService` as coroutines: issuing, verification, invalidation, admin."""

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

    request_inbox_link = Twin(GuestService.request_inbox_link)
    # `within` runs inside the bridge, in the issuing transaction.
    issue_booking_link = Twin(GuestService.issue_booking_link)
    generate_token_for_rescheduled_booking = Twin(
        GuestService.generate_token_for_rescheduled_booking
    )
    verify_token = Twin(GuestService.verify_token)
    consume_token = Twin(GuestService.consume_token)
    invalidate_token = Twin(GuestService.invalidate_token)
    invalidate_tokens_by_booking_id = Twin(GuestService.invalidate_tokens_by_booking_id)
    block_guest = Twin(GuestService.block_guest)
    unblock_guest = Twin(GuestService.unblock_guest)
    get_guest = Twin(GuestService.get_guest)
    log_access = Twin(GuestService.log_access)
    token_stats = Twin(GuestService.token_stats)
    count_expired_tokens = Twin(GuestService.count_expired_tokens)
    purge_expired_tokens = Twin(GuestService.purge_expired_tokens)
    tokens_for_booking = Twin(GuestService.tokens_for_booking)
    audit_trail = Twin(GuestService.audit_trail)


class AsyncBookingService(Shell[BookingService]):
    """`BookingService` as coroutines: the booking lifecycle and its link actions."""

    def __init__(self, sync: BookingService, notifier: AsyncNotifier) -> None:
        super().__init__(sync)
        self._notifier = notifier

    @property
    def notifier(self) -> AsyncNotifier:
        """The async notifier this service mails links through."""
        return self._notifier

    get_booking = Twin(BookingService.get_booking)
    book_session = Twin(BookingService.book_session)
    cancel_session = Twin(BookingService.cancel_session)
    mark_session_as_no_show = Twin(BookingService.mark_session_as_no_show)
    mark_session_complete = Twin(BookingService.mark_session_complete)
    reschedule_session = Twin(BookingService.reschedule_session)
    cancel_with_link = Twin(BookingService.cancel_with_link)
    reschedule_with_link = Twin(BookingService.reschedule_with_link)


class AsyncRatingService(Shell[RatingService]):
    """`RatingService` as coroutines."""

    get_rating = Twin(RatingService.get_rating)
    create_rating = Twin(RatingService.create_rating)
    rate_with_link = Twin(RatingService.rate_with_link)


class AsyncQualityRepository(Shell[QualityRepository]):
    """`QualityRepository` as coroutines: incidents."""

    create_incident = Twin(QualityRepository.create_incident)
    report_with_link = Twin(QualityRepository.report_with_link)


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
