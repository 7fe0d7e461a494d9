"""GuestService issuing: request_inbox_link (SPEC §4 order, rate limit), the system paths,
TTL on every path (R2.5, R6.4), link URLs and Settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from magiclink import (
    AccessDenied,
    AuditAction,
    Booking,
    BookingClosed,
    BookingNotFound,
    BookingStatus,
    InvalidInput,
    MagicLinkError,
    RateLimited,
    Requester,
    Settings,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import UNSAVED_ID
from magiclink.testing.contract_concurrency import released_together
from magiclink.testing.faults import WRITE_CALLS, FaultyUnitOfWork
from magiclink.testing.properties import raw_from_url
from tests.unit.harness import (
    INTERVAL,
    STRANGER,
    STUDENT,
    T0,
    TTL,
    Harness,
    hash_of,
    snapshot,
)

# ------------------------------------------------------------------ request_inbox_link


def test_request_inbox_link_creates_guest_stores_hash_and_audits_create_token() -> None:
    h = Harness.build()
    issued = h.guests.request_inbox_link("  Student@Example.COM ")
    guest = h.guests.get_guest(STUDENT)
    assert guest is not None
    assert guest.normalized_email == STUDENT
    assert guest.last_request_at == T0
    assert issued.guest_id == guest.id
    assert issued.booking_id is None
    token = h.token(issued.raw)
    assert token.token_hash == hash_of(issued.raw) != issued.raw
    assert token.id == issued.token_id
    (entry,) = h.audit(AuditAction.CREATE_TOKEN)
    assert entry.guest_id == guest.id
    assert entry.resource_id is None
    assert entry.success is True
    assert entry.metadata["token_id"] == issued.token_id


def test_request_inbox_link_for_own_booking_binds_token_to_booking_and_revision() -> None:
    h = Harness.build()
    booking, _ = h.book()
    h.update_booking(booking.id, revision=3)
    issued = h.guests.request_inbox_link(STUDENT, booking.id)
    token = h.token(issued.raw)
    assert (token.booking_id, token.booking_revision) == (booking.id, 3)
    entry = h.audit(AuditAction.CREATE_TOKEN)[0]
    assert entry.resource_id == str(booking.id)


def _order_case(name: str) -> tuple[Harness, Callable[[], object], type[MagicLinkError]]:
    """A request that fails several checks at once; the first in SPEC §4 order must win."""
    h = Harness.build()
    booking, _ = h.book()
    other, _ = h.book(STRANGER)
    h.bookings.cancel_session(other.id, "", "mentor", Requester.system())
    closed, _ = h.book()
    h.bookings.cancel_session(closed.id, "", "mentor", Requester.system())
    h.guests.request_inbox_link(STUDENT)  # the last request is now: rate limited from here
    cases: dict[str, tuple[Callable[[], object], type[MagicLinkError]]] = {
        # invalid e-mail beats everything (the booking is unknown too)
        "invalid_email": (lambda: h.guests.request_inbox_link("not-an-email", 999), InvalidInput),
        # blocked beats unknown booking and rate limit
        "blocked": (lambda: h.guests.request_inbox_link("blocked@example.com", 999), AccessDenied),
        # unknown booking beats rate limit; §9.5: the same AccessDenied as another's booking
        "unknown_booking": (lambda: h.guests.request_inbox_link(STUDENT, 999), AccessDenied),
        # another's booking beats closed and rate limit
        "not_yours": (lambda: h.guests.request_inbox_link(STUDENT, other.id), AccessDenied),
        # closed beats rate limit
        "closed": (lambda: h.guests.request_inbox_link(STUDENT, closed.id), BookingClosed),
        "rate_limited": (lambda: h.guests.request_inbox_link(STUDENT, booking.id), RateLimited),
    }
    h.guests.block_guest("blocked@example.com")
    call, error = cases[name]
    return h, call, error


@pytest.mark.parametrize(
    "name",
    ["invalid_email", "blocked", "unknown_booking", "not_yours", "closed", "rate_limited"],
)
def test_request_inbox_link_checks_in_spec_order_and_refusal_writes_nothing(name: str) -> None:
    """SPEC §4: InvalidInput, AccessDenied, AccessDenied (unknown booking, §9.5), AccessDenied,
    BookingClosed, RateLimited; a refused request writes nothing (tokens, last_request_at,
    audit)."""
    h, call, error = _order_case(name)
    before = snapshot(h.uow)
    guest_before = h.guests.get_guest(STUDENT)
    with pytest.raises(error):
        call()
    assert snapshot(h.uow) == before
    assert h.guests.get_guest(STUDENT) == guest_before


def test_refused_request_of_blocked_guest_makes_no_write_call() -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    h.guests.block_guest(STUDENT)
    faulty.clear_calls()
    with pytest.raises(AccessDenied):
        h.guests.request_inbox_link(STUDENT)
    assert not WRITE_CALLS.intersection(faulty.calls)


@pytest.mark.parametrize(
    ("wait", "allowed"),
    [
        (INTERVAL, True),  # now - last == interval: allowed
        (INTERVAL - timedelta(microseconds=1), False),
        (INTERVAL + timedelta(microseconds=1), True),
        (timedelta(0), False),
    ],
)
def test_rate_limit_boundary(wait: timedelta, allowed: bool) -> None:
    """`now - last_request_at < interval` is refused; equal to the interval is allowed."""
    h = Harness.build()
    h.guests.request_inbox_link(STUDENT)
    h.clock.advance(wait)
    if allowed:
        h.guests.request_inbox_link(STUDENT)
        guest = h.guests.get_guest(STUDENT)
        assert guest is not None and guest.last_request_at == h.clock.now()
    else:
        before = snapshot(h.uow)
        with pytest.raises(RateLimited) as caught:
            h.guests.request_inbox_link(STUDENT)
        assert caught.value.code == "TOO_MANY_REQUESTS"
        assert snapshot(h.uow) == before


def test_rate_limit_applies_per_guest_and_zero_interval_disables_it() -> None:
    h = Harness.build()
    h.guests.request_inbox_link(STUDENT)
    h.guests.request_inbox_link(STRANGER)  # another guest is not limited by the first
    free = Harness.build(settings=Settings(request_interval=timedelta(0)))
    for _ in range(3):
        free.guests.request_inbox_link(STUDENT)


def test_first_link_of_a_booking_does_not_rate_limit_the_guest() -> None:
    """book_session issues on the system path: last_request_at untouched."""
    h = Harness.build()
    h.book()
    guest = h.guests.get_guest(STUDENT)
    assert guest is not None and guest.last_request_at is None
    h.guests.request_inbox_link(STUDENT)


# ----------------------------------------------------------------- the system path (R2.2)


def test_rescheduled_booking_token_for_existing_guest_is_never_rate_limited() -> None:
    h = Harness.build()
    booking, _ = h.book()
    h.guests.request_inbox_link(STUDENT)
    guest_before = h.guests.get_guest(STUDENT)
    raws = [h.guests.generate_token_for_rescheduled_booking(STUDENT, booking.id) for _ in range(3)]
    assert len(set(raws)) == 3
    for raw in raws:
        verified = h.guests.verify_token(raw)
        assert verified.token.booking_id == booking.id
        assert verified.guest == guest_before  # last_request_at untouched


def test_rescheduled_booking_token_for_new_guest_creates_the_guest() -> None:
    h = Harness.build()
    with h.uow.transaction() as tx:
        booking = tx.bookings.add(
            Booking(
                id=UNSAVED_ID,
                uid="imported",
                mentor_id=1,
                guest_email="new@example.com",
                start_time=T0,
                end_time=T0 + TTL,
                status=BookingStatus.SCHEDULED,
                revision=2,
            )
        )
        tx.commit()
    assert h.guests.get_guest("new@example.com") is None
    raw = h.guests.generate_token_for_rescheduled_booking(" NEW@example.com", booking.id)
    guest = h.guests.get_guest("new@example.com")
    assert guest is not None and guest.last_request_at is None and not guest.blocked
    token = h.token(raw)
    assert (token.guest_id, token.booking_id, token.booking_revision) == (guest.id, booking.id, 2)


def test_rescheduled_booking_token_refused_for_blocked_guest_and_writes_nothing() -> None:
    h = Harness.build()
    booking, _ = h.book()
    h.guests.block_guest(STUDENT)
    before = snapshot(h.uow)
    with pytest.raises(AccessDenied):
        h.guests.generate_token_for_rescheduled_booking(STUDENT, booking.id)
    assert snapshot(h.uow) == before


@pytest.mark.parametrize(
    ("setup", "error"),
    [("unknown", BookingNotFound), ("other", AccessDenied), ("closed", BookingClosed)],
)
def test_rescheduled_booking_token_refusals(setup: str, error: type[MagicLinkError]) -> None:
    h = Harness.build()
    booking, _ = h.book()
    booking_id = {"unknown": 999, "other": h.book(STRANGER)[0].id, "closed": booking.id}[setup]
    if setup == "closed":
        h.bookings.mark_session_as_no_show(booking.id, Requester.system())
    before = snapshot(h.uow)
    with pytest.raises(error):
        h.guests.generate_token_for_rescheduled_booking(STUDENT, booking_id)
    assert snapshot(h.uow) == before


# ------------------------------------------------------------------- TTL (R2.5, R6.4)


@pytest.mark.parametrize(
    "path", ["inbox", "inbox_booking", "book_session", "reschedule", "system", "booking_link"]
)
def test_ttl_is_exactly_15_minutes_for_every_creation_path(path: str) -> None:
    h = Harness.build()
    booking, _ = h.book()
    h.clock.advance(timedelta(minutes=3, microseconds=7))
    now = h.clock.now()
    if path == "inbox":
        raw = h.guests.request_inbox_link(STUDENT).raw
    elif path == "inbox_booking":
        raw = h.guests.request_inbox_link(STUDENT, booking.id).raw
    elif path == "book_session":
        raw = h.book()[1]
    elif path == "reschedule":
        h.bookings.reschedule_session(booking.id, booking.start_time, Requester.system())
        raw = raw_from_url(h.sent[-1].url)
    elif path == "system":
        raw = h.guests.generate_token_for_rescheduled_booking(STUDENT, booking.id)
    else:
        raw = h.guests.issue_booking_link(STUDENT, booking.id).raw
    token = h.token(raw)
    assert token.created_at == now
    assert token.expires_at == now + timedelta(minutes=15)
    h.clock.set(token.expires_at - timedelta(microseconds=1))
    h.guests.verify_token(raw)
    h.clock.set(token.expires_at)
    with pytest.raises(MagicLinkError, match=r"^Token expired or used$"):
        h.guests.verify_token(raw)


def test_issued_token_reports_expiry() -> None:
    h = Harness.build()
    issued = h.guests.request_inbox_link(STUDENT)
    assert issued.expires_at == T0 + TTL == h.token(issued.raw).expires_at
    assert len(issued.raw) == 64 and set(issued.raw) <= set("0123456789abcdef")
    assert issued.raw not in repr(issued)


# ----------------------------------------------------------------- links and Settings


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (None, "http://localhost:8000/magic-link?token="),
        ("https://app.example/verify", "https://app.example/verify?token="),
        ("https://app.example/v?lang=fr", "https://app.example/v?lang=fr&token="),
    ],
)
def test_link_url_uses_query_or_ampersand(base: str | None, expected: str) -> None:
    settings = Settings() if base is None else Settings(link_base_url=base)
    h = Harness.build(settings=settings)
    _, raw = h.book()
    assert h.sent[-1].url == expected + raw
    assert settings.link_url("abc") == expected + "abc"


def test_settings_defaults() -> None:
    settings = Settings()
    assert settings.token_ttl == timedelta(minutes=15)
    assert settings.request_interval == timedelta(seconds=60)
    assert settings.link_base_url == "http://localhost:8000/magic-link"
    assert settings.revoke_on_reuse is False
    assert settings.supersede_previous_links is False


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token_ttl": timedelta(0)},
        {"token_ttl": timedelta(seconds=-1)},
        {"token_ttl": 900},
        {"request_interval": timedelta(seconds=-1)},
        {"request_interval": 60},
    ],
)
def test_settings_validation_refuses_bad_durations(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):  # §9.6: checked when built
        Settings(**kwargs)  # type: ignore[arg-type]


def test_settings_are_frozen_and_custom_ttl_is_used() -> None:
    settings = Settings(token_ttl=timedelta(minutes=2), request_interval=timedelta(0))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.token_ttl = timedelta(hours=1)  # type: ignore[misc]
    h = Harness.build(settings=settings)
    issued = h.guests.request_inbox_link(STUDENT)
    assert issued.expires_at == T0 + timedelta(minutes=2)


@pytest.mark.parametrize("existing", [False, True])
def test_racing_requests_of_one_guest_issue_exactly_one_link(existing: bool) -> None:
    """The rate limit is one conditional write: of 16 racing requests exactly one wins."""
    h = Harness.build()
    if existing:
        h.guests.request_inbox_link(STUDENT)
        h.clock.advance(INTERVAL)
    issued, errors = released_together(lambda: h.guests.request_inbox_link(STUDENT), threads=16)
    assert len(issued) == 1
    assert [type(error) for error in errors] == [RateLimited] * 15
    assert len(h.audit(AuditAction.CREATE_TOKEN)) == 1 + existing
