"""Lifecycle services: BookingService, RatingService, QualityRepository (R1-R5, R9, §5.4)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from magiclink import (
    AccessDenied,
    AuditAction,
    Booking,
    BookingClosed,
    BookingNotFound,
    BookingService,
    BookingStatus,
    DuplicateRating,
    GuestService,
    IncidentType,
    InvalidationReason,
    InvalidInput,
    LinkMessage,
    MagicLinkError,
    QualityRepository,
    RatingService,
    Requester,
    Services,
    TokenExpiredOrUsed,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import Notifier
from magiclink.testing import raw_from_url
from magiclink.testing.faults import FaultyUnitOfWork
from tests.unit.harness import MENTOR, STRANGER, STUDENT, TTL, Harness, snapshot


class SpyGuestService(GuestService):
    """Records lifecycle calls; raises from the steps named in `failing`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invalidations: list[tuple[int, InvalidationReason | str, dict[str, Any]]] = []
        self.reissues: list[tuple[str, int]] = []
        self.failing: set[str] = set()

    def invalidate_tokens_by_booking_id(
        self,
        booking_id: int,
        reason: InvalidationReason | str,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        self.invalidations.append((booking_id, reason, dict(metadata or {})))
        if "invalidate" in self.failing:
            raise RuntimeError("invalidation exploded")
        return super().invalidate_tokens_by_booking_id(booking_id, reason, metadata=metadata)

    def generate_token_for_rescheduled_booking(self, email: str, booking_id: int) -> str:
        self.reissues.append((email, booking_id))
        if "reissue" in self.failing:
            raise RuntimeError("reissue exploded")
        return super().generate_token_for_rescheduled_booking(email, booking_id)


class FailingNotifier(Notifier):
    """A mail server that is down."""

    def __init__(self) -> None:
        self.attempts: list[LinkMessage] = []
        self.failing = False

    def send(self, message: LinkMessage) -> None:
        self.attempts.append(message)
        if self.failing:
            raise ConnectionError("smtp down")


def spy_harness(**kwargs: Any) -> tuple[Harness, SpyGuestService]:
    """The world with a spying GuestService under the lifecycle services.

    `build_services` has no seam for another GuestService class, so this one test wires the
    lifecycle services over the spy itself, with the world's storage, clock and settings.
    """
    h = Harness.build(**kwargs)
    spy = SpyGuestService(h.uow, clock=h.clock, settings=h.settings, metrics=h.metrics)
    h.services = Services(
        guests=spy,
        bookings=BookingService(h.uow, spy, notifier=h.notifier),
        ratings=RatingService(h.uow, spy),
        quality=QualityRepository(h.uow, spy),
    )
    return h, spy


MENTOR_REQ = Requester(user_id=MENTOR)
STUDENT_REQ = Requester(email=" STUDENT@example.com")
SYSTEM = Requester.system()
STRANGERS = [
    Requester(user_id=MENTOR + 1),
    Requester(email=STRANGER),
    Requester(),
    Requester(user_id=None, email=None, is_system=False),
]


def _step_failures(h: Harness, step: str) -> float:
    return h.metrics.count("magiclink_lifecycle_step_failures_total", step=step)


# ----------------------------------------------------------------------- book_session


def test_book_session_stores_scheduled_booking_and_mails_first_link() -> None:
    h = Harness.build()
    start = h.clock.now() + timedelta(days=2)
    outcome = h.bookings.book_session(MENTOR, " Student@Example.com", start, uid="b-1")
    booking = outcome.booking
    assert outcome.link_sent is True
    assert booking.status is BookingStatus.SCHEDULED and booking.revision == 0
    assert (booking.uid, booking.mentor_id, booking.guest_email) == ("b-1", MENTOR, STUDENT)
    assert booking.end_time - booking.start_time == timedelta(minutes=15)
    (message,) = h.sent
    assert (message.to, message.booking_id) == (STUDENT, booking.id)
    verified = h.guests.verify_token(raw_from_url(message.url))
    assert verified.token.booking_id == booking.id
    assert verified.guest.last_request_at is None


def test_book_session_generates_unique_uids_and_refuses_duplicate_uid() -> None:
    h = Harness.build()
    first, _ = h.book()
    second, _ = h.book()
    assert first.uid != second.uid and len(first.uid) >= 16
    h.bookings.book_session(MENTOR, STUDENT, h.clock.now(), uid="same")
    with pytest.raises(InvalidInput):
        h.bookings.book_session(MENTOR, STUDENT, h.clock.now(), uid="same")


def test_book_session_succeeds_without_link_for_blocked_guest() -> None:
    h = Harness.build()
    h.guests.block_guest(STUDENT)
    outcome = h.bookings.book_session(MENTOR, STUDENT, h.clock.now())
    assert outcome.link_sent is False
    assert h.sent == []
    assert h.booking(outcome.booking.id).status is BookingStatus.SCHEDULED


# ------------------------------------------------------------------------ cancellation


@pytest.mark.parametrize(
    ("cancelled_by", "requester"),
    [("mentor", MENTOR_REQ), ("student", STUDENT_REQ), ("mentor", SYSTEM)],
)
def test_r1_cancellation_invalidates_through_the_injected_guest_service(
    cancelled_by: str, requester: Requester
) -> None:
    """R1.1/R1.2/R5.1: the lifecycle service calls the instance it was given."""
    h, spy = spy_harness()
    booking, raw = h.book()
    second = h.inbox(booking_id=booking.id).raw
    result = h.bookings.cancel_session(booking.id, "ill", cancelled_by, requester)
    assert result.status is BookingStatus.CANCELLED
    assert h.booking(booking.id).status is BookingStatus.CANCELLED
    assert [(b, r) for b, r, _ in spy.invalidations] == [
        (booking.id, InvalidationReason.BOOKING_CANCELLED)
    ]
    assert spy.invalidations[0][2]["cancelled_by"] == cancelled_by
    for link in (raw, second):
        token = h.token(link)
        assert token.invalidated and token.invalidation_reason == "booking_cancelled"
        with pytest.raises(TokenExpiredOrUsed, match=r"^Token expired or used$"):
            h.guests.consume_token(link)


def test_r9_cancellation_succeeds_when_invalidation_raises_and_link_stays_dead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """R9.1 and §5.4: the cancel returns; the token is not invalidated yet still refused."""
    h, spy = spy_harness()
    booking, raw = h.book()
    spy.failing.add("invalidate")
    with caplog.at_level(logging.ERROR, logger="magiclink"):
        result = h.bookings.cancel_session(booking.id, "", "student", STUDENT_REQ)
    assert result.status is BookingStatus.CANCELLED
    assert h.token(raw).invalidated is False
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(raw)
    assert h.verify_audits()[0].metadata["reason"] == "booking_closed"
    assert _step_failures(h, "invalidate") == 1
    failed = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "magiclink"]
    assert failed, "the failure must be logged at ERROR"


def test_cancel_refuses_unknown_canceller_before_anything_else() -> None:
    h = Harness.build()
    before = snapshot(h.uow)
    with pytest.raises(InvalidInput):
        h.bookings.cancel_session(999, "", "admin", STRANGERS[0])
    with pytest.raises(InvalidInput):
        h.bookings.cancel_session(999, "", "mentor", "not a requester")  # type: ignore[arg-type]
    assert snapshot(h.uow) == before


# ------------------------------------------------------------------------- no-show


def test_r1_3_no_show_is_a_cancellation_with_no_show_metadata() -> None:
    h, spy = spy_harness()
    booking, raw = h.book()
    result = h.bookings.mark_session_as_no_show(booking.id, MENTOR_REQ)
    assert result.status is BookingStatus.NO_SHOW
    assert [(b, r, m) for b, r, m in spy.invalidations] == [
        (booking.id, InvalidationReason.BOOKING_CANCELLED, {"event": "no_show"})
    ]
    (entry,) = h.audit(AuditAction.INVALIDATE_TOKEN)
    assert entry.metadata["event"] == "no_show"
    assert entry.metadata["reason"] == "booking_cancelled"
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(raw)


def test_r9_no_show_succeeds_when_invalidation_raises() -> None:
    h, spy = spy_harness()
    booking, raw = h.book()
    spy.failing.add("invalidate")
    assert h.bookings.mark_session_as_no_show(booking.id, SYSTEM).status is BookingStatus.NO_SHOW
    assert h.booking(booking.id).status is BookingStatus.NO_SHOW
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(raw)


# -------------------------------------------------------------------------- reschedule


def test_r2_reschedule_invalidates_old_links_and_mails_one_new_link() -> None:
    h, spy = spy_harness()
    booking, first = h.book()
    second = h.inbox(booking_id=booking.id).raw
    new_start = booking.start_time + timedelta(days=3)
    outcome = h.bookings.reschedule_session(booking.id, new_start, STUDENT_REQ)
    moved = outcome.booking
    assert (outcome.link_issued, outcome.link_sent) == (True, True)
    assert moved.start_time == new_start and moved.revision == 1
    assert moved.end_time - moved.start_time == booking.end_time - booking.start_time
    assert h.booking(booking.id) == moved
    assert spy.invalidations[0][:2] == (booking.id, InvalidationReason.BOOKING_RESCHEDULED)
    assert spy.reissues == [(STUDENT, booking.id)]
    message = h.sent[-1]
    assert (message.to, message.booking_id, message.kind) == (STUDENT, booking.id, "reschedule")
    new = raw_from_url(message.url)
    verified = h.guests.verify_token(new)
    assert verified.token.booking_revision == 1
    assert verified.token.expires_at - verified.token.created_at == TTL
    for old in (first, second):
        assert h.token(old).invalidation_reason == "booking_rescheduled"
        with pytest.raises(TokenExpiredOrUsed):
            h.guests.verify_token(old)
    tokens = h.guests.tokens_for_booking(booking.id)
    assert [t.invalidated for t in tokens] == [True, True, False]


def test_r9_reschedule_succeeds_when_invalidation_fails_and_old_link_is_refused() -> None:
    h, spy = spy_harness()
    booking, old = h.book()
    spy.failing.add("invalidate")
    outcome = h.bookings.reschedule_session(booking.id, booking.start_time, MENTOR_REQ)
    assert (outcome.link_issued, outcome.link_sent) == (True, True)
    assert h.token(old).invalidated is False
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(old)
    assert h.verify_audits()[0].metadata["reason"] == "booking_rescheduled"
    h.guests.verify_token(raw_from_url(h.sent[-1].url))
    assert _step_failures(h, "invalidate") == 1


def test_r9_reschedule_succeeds_when_reissue_fails() -> None:
    h, spy = spy_harness()
    booking, old = h.book()
    spy.failing.add("reissue")
    mails = len(h.sent)
    outcome = h.bookings.reschedule_session(booking.id, booking.start_time, MENTOR_REQ)
    assert (outcome.link_issued, outcome.link_sent) == (False, False)
    assert outcome.booking.revision == 1 == h.booking(booking.id).revision
    assert len(h.sent) == mails
    assert h.token(old).invalidated is True
    assert _step_failures(h, "reissue") == 1


def test_r9_reschedule_succeeds_when_mail_fails() -> None:
    notifier = FailingNotifier()
    h = Harness.build(notifier=notifier)
    booking = h.bookings.book_session(MENTOR, STUDENT, h.clock.now()).booking
    notifier.failing = True
    outcome = h.bookings.reschedule_session(booking.id, booking.start_time, SYSTEM)
    assert (outcome.link_issued, outcome.link_sent) == (True, False)
    assert len(notifier.attempts) == 2
    tokens = h.guests.tokens_for_booking(booking.id)
    assert [t.invalidated for t in tokens] == [True, False]
    assert _step_failures(h, "notify") == 1


def test_r9_book_session_succeeds_when_mail_fails() -> None:
    notifier = FailingNotifier()
    notifier.failing = True
    h = Harness.build(notifier=notifier)
    outcome = h.bookings.book_session(MENTOR, STUDENT, h.clock.now())
    assert outcome.link_sent is False
    assert h.booking(outcome.booking.id).status is BookingStatus.SCHEDULED


def test_r9_reschedule_succeeds_when_all_three_steps_fail() -> None:
    notifier = FailingNotifier()
    h, _ = spy_harness(notifier=notifier)
    assert isinstance(h.guests, SpyGuestService)
    booking = h.bookings.book_session(MENTOR, STUDENT, h.clock.now()).booking
    h.guests.failing.update({"invalidate", "reissue"})
    notifier.failing = True
    outcome = h.bookings.reschedule_session(booking.id, booking.start_time, SYSTEM)
    assert (outcome.link_issued, outcome.link_sent) == (False, False)
    assert h.booking(booking.id).revision == 1


# -------------------------------------------------------------------- fail-closed §5.4


def _invalidation_always_fails() -> tuple[Harness, FaultyUnitOfWork]:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    return h, faulty


@pytest.mark.parametrize("event", ["mentor_cancel", "student_cancel", "no_show", "reschedule"])
def test_5_4_link_refused_after_event_even_when_storage_invalidation_fails(event: str) -> None:
    h, faulty = _invalidation_always_fails()
    booking, old = h.book()
    faulty.arm(1, times=100, match="tokens.invalidate_by_booking")
    if event == "mentor_cancel":
        h.bookings.cancel_session(booking.id, "", "mentor", MENTOR_REQ)
    elif event == "student_cancel":
        h.bookings.cancel_session(booking.id, "", "student", STUDENT_REQ)
    elif event == "no_show":
        h.bookings.mark_session_as_no_show(booking.id, SYSTEM)
    else:
        outcome = h.bookings.reschedule_session(booking.id, booking.start_time, MENTOR_REQ)
        assert outcome.link_issued and outcome.link_sent
    assert faulty.failures == ["tokens.invalidate_by_booking"]
    assert h.token(old).invalidated is False  # the batch never ran ...
    for operation in (h.guests.verify_token, h.guests.consume_token):
        with pytest.raises(TokenExpiredOrUsed):  # ... and the link is dead all the same
            operation(old)


# ---------------------------------------------------------------------- authorization


@pytest.mark.parametrize("stranger", STRANGERS)
@pytest.mark.parametrize("action", ["cancel", "reschedule", "no_show"])
def test_stranger_cannot_change_a_booking_and_nothing_changes(
    action: str, stranger: Requester
) -> None:
    h = Harness.build()
    booking, raw = h.book()
    before = snapshot(h.uow)
    with pytest.raises(AccessDenied):
        _change(h, action, booking, stranger)
    assert snapshot(h.uow) == before
    h.guests.verify_token(raw)


def _change(h: Harness, action: str, booking: Booking, who: Requester) -> object:
    if action == "cancel":
        return h.bookings.cancel_session(booking.id, "", "student", who)
    if action == "reschedule":
        return h.bookings.reschedule_session(
            booking.id, booking.start_time + timedelta(days=1), who
        )
    if action == "no_show":
        return h.bookings.mark_session_as_no_show(booking.id, who)
    if action == "complete":
        return h.bookings.mark_session_complete(booking.id)
    return h.ratings.create_rating(booking.id, "p", 4)


@pytest.mark.parametrize("closed_by", ["cancel", "no_show"])
@pytest.mark.parametrize("action", ["cancel", "reschedule", "no_show", "complete", "rating"])
def test_closed_booking_refuses_every_change(closed_by: str, action: str) -> None:
    h = Harness.build()
    booking, _ = h.book()
    _change(h, closed_by, booking, SYSTEM)
    before = snapshot(h.uow)
    with pytest.raises(BookingClosed) as caught:
        _change(h, action, booking, MENTOR_REQ)
    assert caught.value.code == "CONFLICT"
    assert snapshot(h.uow) == before


@pytest.mark.parametrize("action", ["cancel", "reschedule", "no_show", "complete", "rating"])
def test_unknown_booking_is_not_found_before_authorization(action: str) -> None:
    h = Harness.build()
    ghost = Booking(
        id=4242,
        uid="ghost",
        mentor_id=1,
        guest_email=STUDENT,
        start_time=h.clock.now(),
        end_time=h.clock.now(),
        status=BookingStatus.SCHEDULED,
        revision=0,
    )
    with pytest.raises(BookingNotFound):
        _change(h, action, ghost, STRANGERS[0])


def test_stranger_on_closed_booking_is_denied_before_closed() -> None:
    h = Harness.build()
    booking, _ = h.book()
    h.bookings.cancel_session(booking.id, "", "mentor", MENTOR_REQ)
    with pytest.raises(AccessDenied):
        h.bookings.cancel_session(booking.id, "", "mentor", STRANGERS[0])


# ------------------------------------------------------------------------- R9 logging


def test_r9_1_failure_logged_at_error_with_booking_reason_error_and_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """R9.1/R9.5: what failed, for which booking, why, and how long it took."""
    h, faulty = _invalidation_always_fails()
    booking, _ = h.book()
    faulty.arm(1, times=100, match="tokens.invalidate_by_booking")
    with caplog.at_level(logging.DEBUG, logger="magiclink"):
        h.bookings.cancel_session(booking.id, "", "mentor", MENTOR_REQ)
    errors = [r for r in caplog.records if r.name == "magiclink" and r.levelno == logging.ERROR]
    assert errors
    for record in errors:
        fields: dict[str, Any] = record.__dict__
        assert fields["booking_id"] == booking.id
        assert fields["reason"] == "booking_cancelled"
        assert fields["error_type"] == "StorageError"
        assert "Injected fault" in fields["error"]
        assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] >= 0
        assert str(booking.id) in record.getMessage()
    assert {r.__dict__["event"] for r in errors} >= {"lifecycle.step_failed"}
    assert h.metrics.count("magiclink_invalidation_failures_total") >= 1


@pytest.mark.parametrize("times", [1, 2])
def test_r9_4_transient_invalidation_error_is_retried_exactly_once(
    times: int, caplog: pytest.LogCaptureFixture
) -> None:
    """One transient fault: the retry succeeds. Two in a row: it gives up, logged."""
    h, faulty = _invalidation_always_fails()
    booking, raw = h.book()
    faulty.arm(1, transient=True, times=times, match="tokens.invalidate_by_booking")
    faulty.clear_calls()
    with caplog.at_level(logging.DEBUG, logger="magiclink"):
        result = h.bookings.cancel_session(booking.id, "", "mentor", MENTOR_REQ)
    assert result.status is BookingStatus.CANCELLED
    assert faulty.calls.count("tokens.invalidate_by_booking") == 2
    retried = [r for r in caplog.records if r.__dict__.get("event") == "token_invalidation.retried"]
    assert len(retried) == 1 and retried[0].levelno == logging.WARNING
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    if times == 1:
        assert h.token(raw).invalidated is True
        assert errors == []
    else:
        assert h.token(raw).invalidated is False
        assert errors and all(r.__dict__["error_type"] == "StorageError" for r in errors)


# ---------------------------------------------------------------------------- ratings


def test_r3_rating_is_stored_then_links_invalidated() -> None:
    h, spy = spy_harness()
    booking, raw = h.book()
    fresh_before = h.inbox(booking_id=booking.id).raw
    rating = h.ratings.create_rating(booking.id, "profile-9", 4, "great")
    assert (rating.booking_id, rating.rating, rating.feedback) == (booking.id, 4, "great")
    assert rating.student_profile_id == "profile-9"
    assert spy.invalidations[0][:2] == (booking.id, InvalidationReason.RATING_SUBMITTED)
    for link in (raw, fresh_before):
        assert h.token(link).invalidation_reason == "rating_submitted"
        with pytest.raises(TokenExpiredOrUsed):  # R3.2/R3.3
            h.guests.consume_token(link)
    fresh = h.inbox(booking_id=booking.id).raw  # R3.4: a fresh link still views the session
    assert h.guests.verify_token(fresh).token.booking_id == booking.id
    with pytest.raises(DuplicateRating) as caught:
        h.ratings.create_rating(booking.id, "profile-9", 5)
    assert caught.value.code == "CONFLICT"


def test_r9_rating_succeeds_when_invalidation_fails() -> None:
    h, spy = spy_harness()
    booking, raw = h.book()
    spy.failing.add("invalidate")
    rating = h.ratings.create_rating(booking.id, "p", 3)
    assert rating.rating == 3
    assert h.token(raw).invalidated is False
    assert _step_failures(h, "invalidate") == 1


@pytest.mark.parametrize(
    ("rating", "feedback", "booking", "error"),
    [
        (0, None, "unknown", InvalidInput),
        (6, None, "closed", InvalidInput),
        (True, None, "open", InvalidInput),
        (4.0, None, "open", InvalidInput),
        (3, "x" * 2001, "unknown", InvalidInput),
        (3, "x" * 2000, "unknown", BookingNotFound),
        (3, None, "closed_rated", BookingClosed),
        (3, None, "rated", DuplicateRating),
    ],
)
def test_create_rating_check_order(
    rating: Any, feedback: str | None, booking: str, error: type[MagicLinkError]
) -> None:
    h = Harness.build()
    target, _ = h.book()
    if booking in ("rated", "closed_rated"):
        h.ratings.create_rating(target.id, "p", 5)
    if booking in ("closed", "closed_rated"):
        h.bookings.cancel_session(target.id, "", "mentor", SYSTEM)
    booking_id = 999 if booking == "unknown" else target.id
    before = snapshot(h.uow)
    with pytest.raises(error):
        h.ratings.create_rating(booking_id, "p", rating, feedback)
    assert snapshot(h.uow) == before


def test_completed_session_keeps_links_and_may_be_rated_once() -> None:
    h, spy = spy_harness()
    booking, raw = h.book()
    completed = h.bookings.mark_session_complete(booking.id)
    assert completed.status is BookingStatus.COMPLETED
    assert spy.invalidations == []
    assert h.guests.verify_token(raw).token.invalidated is False
    h.ratings.create_rating(booking.id, "p", 5)
    with pytest.raises(DuplicateRating):
        h.ratings.create_rating(booking.id, "p", 5)
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(raw)


# -------------------------------------------------------------------------- incidents


def test_r4_incident_found_by_uid_stored_then_links_invalidated() -> None:
    h, spy = spy_harness()
    booking, raw = h.book()
    other, other_raw = h.book()  # another booking of the same guest, untouched
    incident = h.quality.create_incident(
        "mentor-profile-3", booking.uid, IncidentType.LATE, "", reported_by_user_id=MENTOR
    )
    assert (incident.booking_uid, incident.booking_id) == (booking.uid, booking.id)
    assert incident.type is IncidentType.LATE and incident.description == ""
    assert spy.invalidations[0][:2] == (booking.id, InvalidationReason.INCIDENT_REPORTED)
    assert h.token(raw).invalidation_reason == "incident_reported"
    with pytest.raises(TokenExpiredOrUsed):  # R4.2/R4.3
        h.guests.consume_token(raw)
    fresh = h.inbox(booking_id=booking.id).raw  # R4.4
    assert h.guests.verify_token(fresh).token.booking_id == booking.id
    assert h.guests.verify_token(other_raw).token.booking_id == other.id


def test_r4_unknown_uid_stores_incident_skips_invalidation_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h, spy = spy_harness()
    _, raw = h.book()
    with caplog.at_level(logging.WARNING, logger="magiclink"):
        incident = h.quality.create_incident("p", "no-such-uid", "other", "lost")
    assert incident.booking_id is None and incident.booking_uid == "no-such-uid"
    with h.uow.transaction(readonly=True) as tx:
        assert tx.incidents.list_by_booking_uid("no-such-uid") == [incident]
    assert spy.invalidations == []
    warnings = [r for r in caplog.records if r.name == "magiclink" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    h.guests.verify_token(raw)


def test_r9_incident_succeeds_when_invalidation_fails() -> None:
    h, spy = spy_harness()
    booking, raw = h.book()
    spy.failing.add("invalidate")
    incident = h.quality.create_incident("p", booking.uid, IncidentType.NO_SHOW, "gone")
    assert incident.booking_id == booking.id
    assert h.token(raw).invalidated is False
    assert _step_failures(h, "invalidate") == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type": "not-a-type"},
        {"description": "x" * 5001},
        {"student_profile_id": ""},
        {"booking_uid": ""},
        {"reported_by_user_id": 0},
        {"description": None},
    ],
)
def test_create_incident_bad_input_writes_nothing(kwargs: dict[str, Any]) -> None:
    h = Harness.build()
    booking, _ = h.book()
    args: dict[str, Any] = {
        "student_profile_id": "p",
        "booking_uid": booking.uid,
        "type": IncidentType.OTHER,
        "description": "d",
        **kwargs,
    }
    before = snapshot(h.uow)
    with pytest.raises(InvalidInput):
        h.quality.create_incident(**args)
    assert snapshot(h.uow) == before


def test_incident_description_of_5000_characters_is_accepted() -> None:
    h = Harness.build()
    booking, _ = h.book()
    incident = h.quality.create_incident("p", booking.uid, "TECHNICAL_ISSUE", "x" * 5000)
    assert incident.type is IncidentType.TECHNICAL_ISSUE
