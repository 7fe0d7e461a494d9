"""BookingService: the booking lifecycle, whose every event kills the booking's links."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from magiclink.domain._audit import new_operation_id
from magiclink.domain._enums import BookingStatus, InvalidationReason
from magiclink.domain._errors import InvalidInput
from magiclink.domain._guest_service import GuestService
from magiclink.domain._lifecycle import (
    MAX_FREE_TEXT,
    LifecycleService,
    load_for_change,
    require_requester,
    revoke_links,
    run_after_step,
)
from magiclink.domain._link_actions import LinkGrant, run_link_action
from magiclink.domain._policy import (
    MAX_TEXT_ID_LENGTH,
    normalize_email,
    require_aware,
    require_duration,
    require_id,
    require_text,
)
from magiclink.domain._records import (
    UNSAVED_ID,
    Booking,
    BookingOutcome,
    LinkMessage,
    Requester,
    RescheduleOutcome,
)
from magiclink.domain._replace import replacer
from magiclink.domain._transactions import Operation, read, run
from magiclink.ports._clock import Clock
from magiclink.ports._metrics import Metrics
from magiclink.ports._notifier import Notifier
from magiclink.ports._outbox import Outbox, OutboxMessage
from magiclink.ports._unit_of_work import Transaction, UnitOfWork

DEFAULT_DURATION: Final = timedelta(minutes=15)
MAX_DURATION: Final = timedelta(days=7)
CANCELLERS: Final = frozenset({"mentor", "student"})

_with_operation: Final = replacer(Booking, "operation_id")
_with_status: Final = replacer(Booking, "status")
_with_status_and_operation: Final = replacer(Booking, "status", "operation_id")
_moved: Final = replacer(Booking, "start_time", "end_time", "revision")


class BookingService(LifecycleService):
    """Books, cancels, reschedules and closes sessions; links die with every change.

    Every change commits in its own transaction first; invalidating links, issuing the new
    link and mailing it run afterwards, and their failure never fails the booking operation
    (R9): it is logged at ERROR and counted. Verification is fail-closed (§5.4), so a link of
    a closed or moved booking is refused even when its invalidation failed.

    Checks of every method, first failure raising: `InvalidInput`, `BookingNotFound`,
    `AccessDenied` (not the mentor, not the guest, not the system), `BookingClosed`.
    A refused call changes nothing.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        guest_service: GuestService,
        *,
        notifier: Notifier,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        super().__init__(uow, guest_service, clock=clock, metrics=metrics)
        self._notifier = notifier
        self._outbox = outbox if guest_service.settings.mail_via_outbox else None
        if guest_service.settings.mail_via_outbox and outbox is None:
            raise InvalidInput("Settings.mail_via_outbox needs an outbox")

    @property
    def notifier(self) -> Notifier:
        """The notifier this service mails links through (web front: fresh-link requests)."""
        return self._notifier

    def get_booking(self, booking_id: int) -> Booking | None:
        """The booking with this id, or None (read-only; the guest's page shows it)."""
        booking_id = require_id(booking_id, "booking_id")
        return run(self._uow, read(lambda tx: tx.bookings.get(booking_id)))

    def book_session(
        self,
        mentor_id: int,
        guest_email: str,
        start_time: datetime,
        duration: timedelta = DEFAULT_DURATION,
        uid: str | None = None,
    ) -> BookingOutcome:
        """Store a scheduled booking (revision 0) and mail the guest its first link.

        The link is issued on the system path (never rate-limited). Failing to issue or mail
        it does not fail the booking: `link_sent` is then False. A duplicate `uid` raises
        `InvalidInput`.
        """
        mentor_id = require_id(mentor_id, "mentor_id")
        email = normalize_email(guest_email)
        start = require_aware(start_time, "start_time")
        length = require_duration(duration, "duration")
        if length > MAX_DURATION:
            raise InvalidInput(f"duration must be at most {MAX_DURATION.days} days")
        uid = (
            secrets.token_urlsafe(16)
            if uid is None
            else require_text(uid, "uid", max_length=MAX_TEXT_ID_LENGTH)
        )
        if uid != uid.strip():  # MariaDB compares "abc" and "abc " as equal
            raise InvalidInput("uid must not start or end with whitespace")
        end = _end_of(start, length)
        operation_id = new_operation_id()

        def work(tx: Transaction) -> Booking:
            booking = tx.bookings.add(
                Booking(
                    id=UNSAVED_ID,
                    uid=uid,
                    mentor_id=mentor_id,
                    guest_email=email,
                    start_time=start,
                    end_time=end,
                    status=BookingStatus.SCHEDULED,
                    revision=0,
                    operation_id=operation_id,
                )
            )
            self._enqueue_mail(tx, booking, "booking")
            return booking

        landed = _written_by(operation_id, lambda tx: tx.bookings.get_by_uid(uid))
        booking = run(self._uow, Operation(work, landed=landed))
        if self._outbox is not None:  # §11.2: the outbox worker mails it
            return BookingOutcome(booking=booking, link_sent=False)
        sent = self._issue_and_mail(booking, "booking", reason="booking_created")
        return BookingOutcome(booking=booking, link_sent=sent)

    def cancel_session(
        self, booking_id: int, reason: str, cancelled_by: str, requester: Requester
    ) -> Booking:
        """Cancel the booking (by its mentor or its student); all its links die (R1.1, R1.2)."""
        booking_id = require_id(booking_id, "booking_id")
        note = require_text(reason, "reason", max_length=MAX_FREE_TEXT, allow_empty=True)
        if not isinstance(cancelled_by, str) or cancelled_by not in CANCELLERS:
            raise InvalidInput('cancelled_by must be "mentor" or "student"')
        who = require_requester(requester)
        booking = self._set_status(booking_id, who, BookingStatus.CANCELLED)
        self._invalidate_after(
            booking.id,
            InvalidationReason.BOOKING_CANCELLED,
            {"event": "cancellation", "cancelled_by": cancelled_by, "cancellation_note": note},
        )
        return booking

    def mark_session_as_no_show(self, booking_id: int, requester: Requester) -> Booking:
        """Mark the booking as a no-show: a cancellation whose links all die (R1.3)."""
        booking_id = require_id(booking_id, "booking_id")
        who = require_requester(requester)
        booking = self._set_status(booking_id, who, BookingStatus.NO_SHOW)
        self._invalidate_after(
            booking.id, InvalidationReason.BOOKING_CANCELLED, {"event": "no_show"}
        )
        return booking

    def mark_session_complete(self, booking_id: int) -> Booking:
        """Mark the session as held. Links stay valid: the guest may still view and rate."""
        booking_id = require_id(booking_id, "booking_id")
        return self._set_status(booking_id, None, BookingStatus.COMPLETED)

    def reschedule_session(
        self, booking_id: int, new_start: datetime, requester: Requester
    ) -> RescheduleOutcome:
        """Move the booking (same duration, revision + 1), kill its old links, mail a new one.

        The move commits first. Invalidating the old links (reason `booking_rescheduled`),
        issuing exactly one new link for the booking's guest and mailing it then run in turn;
        each may fail without failing the reschedule (R9): the outcome says what happened.
        """
        booking_id = require_id(booking_id, "booking_id")
        start = require_aware(new_start, "new_start")
        _end_of(start, MAX_DURATION)  # bad input is refused before the booking is read
        who = require_requester(requester)
        operation_id = new_operation_id()

        def work(tx: Transaction) -> Booking:
            booking = revoke_links(tx, load_for_change(tx, booking_id, who))
            return self._move(tx, _with_operation(booking, operation_id), start)

        landed = _written_by(operation_id, lambda tx: tx.bookings.get(booking_id))
        booking = run(self._uow, Operation(work, landed=landed))
        self._invalidate_after(
            booking.id, InvalidationReason.BOOKING_RESCHEDULED, {"event": "reschedule"}
        )
        return self._reissue(booking)

    def _move(self, tx: Transaction, booking: Booking, start: datetime) -> Booking:
        """Write the locked booking at `start` (same duration, revision + 1) and, with an
        outbox, its mail intent (§11.2): the one reschedule write of both paths. `booking`
        carries the operation id of the calling operation."""
        moved = _moved(
            booking,
            start,
            _end_of(start, booking.end_time - booking.start_time),
            booking.revision + 1,
        )
        tx.bookings.update(moved)
        self._enqueue_mail(tx, moved, "reschedule")
        return moved

    def _reissue(self, booking: Booking) -> RescheduleOutcome:
        """Issue and mail the one new link of a moved booking (R2); never raise (R9)."""
        if self._outbox is not None:  # §11.2: the outbox worker issues and mails the link
            return RescheduleOutcome(booking=booking, link_issued=False, link_sent=False)
        issued, raw = run_after_step(
            self._metrics,
            "reissue",
            booking.id,
            str(InvalidationReason.BOOKING_RESCHEDULED),
            lambda: self._guests.generate_token_for_rescheduled_booking(
                booking.guest_email, booking.id
            ),
        )
        sent = False
        if issued and raw is not None:
            sent = self._mail(
                booking, raw, "reschedule", str(InvalidationReason.BOOKING_RESCHEDULED)
            )
        return RescheduleOutcome(booking=booking, link_issued=issued, link_sent=sent)

    def _enqueue_mail(self, tx: Transaction, booking: Booking, kind: str) -> None:
        """Store the mail intent in the booking's own transaction (§11.2); no token at rest."""
        if self._outbox is not None:
            self._outbox.enqueue(tx, OutboxMessage.pending(booking, kind, self._clock.now()))

    # ------------------------------------------------------- link actions (§8.1)

    def cancel_with_link(self, raw: str, reason: str, *, booking_id: int | None = None) -> Booking:
        """Cancel with the guest's link (`cancelled_by="student"`), in one transaction (§8.1)."""
        note = require_text(reason, "reason", max_length=MAX_FREE_TEXT, allow_empty=True)

        def act(tx: Transaction, grant: LinkGrant) -> Booking:
            closed = _with_status(grant.booking, BookingStatus.CANCELLED)
            tx.bookings.update(closed)
            return closed

        return run_link_action(
            self._links,
            raw,
            booking_id,
            act,
            reason=InvalidationReason.BOOKING_CANCELLED,
            action="cancellation",
            metadata={"cancelled_by": "student", "cancellation_note": note},
        )

    def reschedule_with_link(
        self, raw: str, new_start: datetime, *, booking_id: int | None = None
    ) -> RescheduleOutcome:
        """Move the booking with the guest's link (one transaction, §8.1); then mail the new
        link as `reschedule_session` does (R2)."""
        start = require_aware(new_start, "new_start")
        _end_of(start, MAX_DURATION)

        def act(tx: Transaction, grant: LinkGrant) -> Booking:
            return self._move(tx, grant.booking, start)

        moved = run_link_action(
            self._links,
            raw,
            booking_id,
            act,
            reason=InvalidationReason.BOOKING_RESCHEDULED,
            action="reschedule",
        )
        return self._reissue(moved)

    def _set_status(
        self, booking_id: int, requester: Requester | None, status: BookingStatus
    ) -> Booking:
        """Give the booking `status` in one transaction: a closing status (cancelled,
        no-show) also kills its links there (§8.4); completion keeps them (the guest may
        still view and rate)."""
        operation_id = new_operation_id()

        def work(tx: Transaction) -> Booking:
            booking = load_for_change(tx, booking_id, requester)
            if status.is_closed:
                booking = revoke_links(tx, booking)
            changed = _with_status_and_operation(booking, status, operation_id)
            tx.bookings.update(changed)
            return changed

        landed = _written_by(operation_id, lambda tx: tx.bookings.get(booking_id))
        return run(self._uow, Operation(work, landed=landed))

    def _issue_and_mail(self, booking: Booking, kind: str, reason: str) -> bool:
        issued, token = run_after_step(
            self._metrics,
            "issue",
            booking.id,
            reason,
            lambda: self._guests.issue_booking_link(booking.guest_email, booking.id),
        )
        if not issued or token is None:
            return False
        return self._mail(booking, token.raw, kind, reason)

    def _mail(self, booking: Booking, raw: str, kind: str, reason: str) -> bool:
        message = LinkMessage(
            to=booking.guest_email,
            url=self._guests.settings.link_url(raw),
            booking_id=booking.id,
            kind=kind,
            starts_at=booking.start_time,
            valid_for=self._guests.settings.token_ttl,
        )
        sent, _ = run_after_step(
            self._metrics, "notify", booking.id, reason, lambda: self._notifier.send(message)
        )
        return sent


def _written_by(
    operation_id: str, find: Callable[[Transaction], Booking | None]
) -> Callable[[Transaction], Booking | None]:
    """The `landed` check of every booking write, exact (R9.4, issue 12.2): the booking
    `find` reads (by id or uid) carries this call's `operation_id`, which the attempt wrote
    with the row itself. Another caller's same-looking change (the same status, the same
    uid, the same new time) carries its own id, so it is never taken for this call's."""

    def landed(tx: Transaction) -> Booking | None:
        booking = find(tx)
        return booking if booking is not None and booking.operation_id == operation_id else None

    return landed


def _end_of(start: datetime, duration: timedelta) -> datetime:
    try:
        return start + duration
    except OverflowError as error:
        raise InvalidInput("The session would end after the year 9999") from error


__all__ = ["CANCELLERS", "DEFAULT_DURATION", "MAX_DURATION", "BookingService"]
