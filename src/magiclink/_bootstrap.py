"""The composition root: one call wires the four services on one unit of work."""

from __future__ import annotations

import attrs

from magiclink.domain._booking_service import BookingService
from magiclink.domain._guest_service import GuestService
from magiclink.domain._quality import QualityRepository
from magiclink.domain._rating_service import RatingService
from magiclink.domain._records import Settings
from magiclink.ports._clock import Clock
from magiclink.ports._metrics import Metrics
from magiclink.ports._notifier import Notifier
from magiclink.ports._outbox import Outbox
from magiclink.ports._unit_of_work import UnitOfWork

__all__ = ["Services", "build_services"]


@attrs.frozen
class Services:
    """The four services of one host, sharing one unit of work, clock, settings and metrics."""

    guests: GuestService
    bookings: BookingService
    ratings: RatingService
    quality: QualityRepository


def build_services(
    uow: UnitOfWork,
    *,
    notifier: Notifier,
    clock: Clock | None = None,
    settings: Settings | None = None,
    metrics: Metrics | None = None,
    outbox: Outbox | None = None,
) -> Services:
    """Wire `GuestService` and the lifecycle services that invalidate through it (R5.1).

    Defaults are built lazily by the services themselves: the system clock, `Settings()`,
    and metrics that record nothing. Nothing here connects to storage.
    """
    guests = GuestService(uow, clock=clock, settings=settings, metrics=metrics)
    return Services(
        guests=guests,
        bookings=BookingService(uow, guests, notifier=notifier, outbox=outbox),
        ratings=RatingService(uow, guests),
        quality=QualityRepository(uow, guests),
    )
