"""What every lifecycle service shares: authorization, and the non-blocking after-steps (R9)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar

from magiclink.domain._addresses import normalize_address
from magiclink.domain._audit import new_operation_id
from magiclink.domain._enums import InvalidationReason
from magiclink.domain._errors import AccessDenied, BookingClosed, BookingNotFound, InvalidInput
from magiclink.domain._guest_service import GuestService, link_context
from magiclink.domain._link_actions import LinkGrant, revoke_links, run_link_action
from magiclink.domain._observability import Events, elapsed_ms, log_event
from magiclink.domain._records import Booking, Requester
from magiclink.domain._transactions import Operation, run
from magiclink.ports._clock import Clock
from magiclink.ports._metrics import MetricNames, Metrics
from magiclink.ports._unit_of_work import Transaction, UnitOfWork

T = TypeVar("T")


class _HasOperationId(Protocol):
    @property
    def operation_id(self) -> str | None: ...


Stored = TypeVar("Stored", bound=_HasOperationId)
"""A record a lifecycle service stores once, keyed by the operation id it carries."""

MAX_FREE_TEXT: Final = 2_000


def require_requester(requester: object) -> Requester:
    """`requester` if it is a well-typed `Requester`, else `InvalidInput`.

    The fields are checked, not trusted: a host that fills `is_system` from JSON must not
    turn the string "false" into the platform's rights.
    """
    if not isinstance(requester, Requester):
        raise InvalidInput("requester must be a Requester")
    user_id = requester.user_id
    if not isinstance(requester.is_system, bool):
        raise InvalidInput("requester.is_system must be a bool")
    if user_id is not None and (not isinstance(user_id, int) or isinstance(user_id, bool)):
        raise InvalidInput("requester.user_id must be an integer or None")
    if requester.email is not None and not isinstance(requester.email, str):
        raise InvalidInput("requester.email must be a string or None")
    return requester


def may_change(requester: Requester, booking: Booking) -> bool:
    """The system, the booking's mentor, or its guest (by normalized e-mail) may change it."""
    if requester.is_system:
        return True
    if requester.user_id is not None and requester.user_id == booking.mentor_id:
        return True
    if not isinstance(requester.email, str):
        return False
    try:
        # The same normalization as the stored address (§9.2): `\u212aim@…` is not kim@….
        return normalize_address(requester.email) == booking.guest_email
    except InvalidInput:
        return False  # an address that is not one matches no guest


def load_for_change(tx: Transaction, booking_id: int, requester: Requester | None) -> Booking:
    """The booking, locked for this transaction, after the checks every change makes.

    Unknown → `BookingNotFound`; requester not allowed → `AccessDenied`; cancelled or no-show
    → `BookingClosed`. `requester=None` means the platform itself.
    """
    booking = tx.bookings.get(booking_id, for_update=True)
    if booking is None:
        raise BookingNotFound()
    if requester is not None and not may_change(requester, booking):
        raise AccessDenied()
    if booking.is_closed:
        raise BookingClosed()
    return booking


def run_after_step(
    metrics: Metrics,
    step: str,
    booking_id: int,
    reason: str,
    action: Callable[[], T],
) -> tuple[bool, T | None]:
    """Run one after-step of a committed booking change; never raise (R9.1, R9.2).

    Returns (True, result) on success. Any exception is logged at ERROR on logger
    `magiclink` with the booking id, reason, step, error type and message and duration (R9.5),
    counted in `magiclink_lifecycle_step_failures_total`, and returns (False, None).
    """
    started = time.perf_counter()
    try:
        return True, action()
    except Exception as error:
        metrics.increment(MetricNames.LIFECYCLE_STEP_FAILURES, labels={"step": step})
        log_event(
            logging.ERROR,
            Events.LIFECYCLE_STEP_FAILED,
            step=step,
            booking_id=booking_id,
            reason=reason,
            duration_ms=elapsed_ms(started),
            error_type=type(error).__name__,
            error=str(error),
        )
        return False, None


class LifecycleService:
    """Base of the lifecycle services: the shared unit of work, and the guest service they
    were given, through which — and only through which — they invalidate links (R5.1).

    Clock and metrics default to the guest service's, so one configuration serves all.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        guest_service: GuestService,
        *,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._uow = uow
        self._guests = guest_service
        self._links = link_context(guest_service)
        self._clock: Clock = clock if clock is not None else guest_service.clock
        self._metrics: Metrics = metrics if metrics is not None else guest_service.metrics

    def _invalidate_after(
        self, booking_id: int, reason: InvalidationReason, metadata: dict[str, Any]
    ) -> None:
        """Invalidate the booking's links after its change committed; never raise (R9)."""
        run_after_step(
            self._metrics,
            "invalidate",
            booking_id,
            str(reason),
            lambda: self._guests.invalidate_tokens_by_booking_id(
                booking_id, reason, metadata=metadata
            ),
        )

    def _run_once(
        self,
        work: Callable[[Transaction, datetime, str], Stored],
        candidates: Callable[[Transaction], Iterable[Stored | None]],
    ) -> Stored:
        """Run `work(tx, now, operation_id)` in one transaction under a fresh operation id.

        After an ambiguous commit the landed check is exact: the first of `candidates(tx)`
        (the records where `work` stores its one) that bears this call's operation id.
        """
        now = self._clock.now()
        operation_id = new_operation_id()

        def landed(tx: Transaction) -> Stored | None:
            ours = (r for r in candidates(tx) if r is not None and r.operation_id == operation_id)
            return next(ours, None)

        return run(self._uow, Operation(lambda tx: work(tx, now, operation_id), landed=landed))

    def _act_with_link(
        self,
        raw: str,
        booking_id: int | None,
        act: Callable[[Transaction, LinkGrant], T],
        reason: InvalidationReason,
        action: str,
    ) -> T:
        """Run `act` under the authority of the guest's link (§8.1): see `run_link_action`."""
        return run_link_action(self._links, raw, booking_id, act, reason=reason, action=action)


__all__ = [
    "MAX_FREE_TEXT",
    "LifecycleService",
    "load_for_change",
    "may_change",
    "require_requester",
    "revoke_links",
    "run_after_step",
]
