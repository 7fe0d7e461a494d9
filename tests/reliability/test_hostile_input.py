"""Hostile input: every public service method, fed values of the wrong type, size and content.

Hypothesis calls each public method of `GuestService`, `BookingService`, `RatingService`
and `QualityRepository` with, for every parameter, either a sensible value (the seeded
booking, a live link, a valid e-mail...) or a hostile one: None, bools, floats, NaN, huge
and negative ints (beyond 2**63), huge strings, NUL bytes, lone surrogates and other
unicode, bytes, naive datetimes, far-past and far-future aware datetimes (years 1 and 9999
in extreme offsets), timedelta extremes, strings that are no enum member, lists, dicts, odd
objects, and `Requester`s with fields of the wrong type.

The contract (SPEC §4): only `MagicLinkError` subclasses escape, whatever the adapter or the
driver did (on SQLite, text the database cannot store must surface as a magiclink error);
and a refused call writes nothing (storage compared before and after; a refused
verification of a known token may add its one `VERIFY_TOKEN` entry, R7). Each method runs
on a fresh seeded world per example, in memory and on SQLite.

The explicit cases at the end pin the escapes found so far, one test each.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from magiclink import (
    AccessDenied,
    BookingStatus,
    IncidentType,
    InvalidationReason,
    InvalidInput,
    MagicLinkError,
    Requester,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata
from tests.reliability.world import (
    MENTOR,
    OTHER,
    PROFILE,
    STUDENT,
    T0,
    Seed,
    World,
    rows,
    sha256_hex,
)

EXAMPLES = 100

# --- hostile values ------------------------------------------------------------------------

HUGE_TEXT = "x" * 100_000
TEXTS = [
    HUGE_TEXT,
    "",
    " ",
    "\x00",
    "a\x00b",
    f"{STUDENT}\x00",
    "\ud800",
    f"\udfff{STUDENT}",
    "".join(chr(0xFEE0 + ord(c)) if c.isalpha() else c for c in STUDENT),  # full-width
    "🙂" * 300,
    "Robert'); DROP TABLE magiclink_tokens;--",
    "a@b.c" + "o" * 300,
    "'@\"",
]
INTS = [0, -1, -(2**63), -(2**63) - 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, -(10**30)]
DATETIMES = [
    datetime.max.replace(tzinfo=UTC),
    datetime.min.replace(tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59))),
    datetime(2030, 1, 1),  # naive
    datetime.max,
]
TIMEDELTAS = [timedelta.max, timedelta.min, timedelta(0), timedelta(microseconds=1), -timedelta(1)]
NON_MEMBERS = [
    "not_a_reason",
    "BOOKING_CANCELLED ",
    "Booking-Cancelled",
    "no show",
    "NOSHOW",
    "mentor ",
    "Mentor",
    "system",
]


class Weird:
    """An object no service has heard of."""

    def __repr__(self) -> str:
        return "Weird()"


simple_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from(INTS),
    st.floats(),
    st.text(st.characters(blacklist_categories=()), max_size=40),
    st.sampled_from(TEXTS),
    st.binary(max_size=16),
    st.datetimes(),
    st.datetimes(timezones=st.timezones()),
    st.sampled_from(DATETIMES),
    st.timedeltas(),
    st.sampled_from(TIMEDELTAS),
    st.sampled_from(NON_MEMBERS),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.builds(Weird),
    st.just(math.inf),
)
odd_requesters = st.builds(
    Requester,
    user_id=st.one_of(simple_junk, st.just(MENTOR)),
    email=st.one_of(simple_junk, st.just(STUDENT)),
    is_system=st.one_of(st.just(False), simple_junk),
)
junk = st.one_of(simple_junk, odd_requesters, st.sampled_from(list(BookingStatus)))


def either(*valid: Any) -> st.SearchStrategy[Any]:
    """One of the sensible values, or junk."""
    return st.one_of(st.sampled_from(valid), junk)


def strategies(seed: Seed) -> dict[str, dict[str, st.SearchStrategy[Any]]]:
    """For each method, a strategy per parameter, the seeded world's values among them."""
    booking_ids = either(seed.booking.id, seed.bystander.id, 10**6)
    emails = either(STUDENT, OTHER, " Student@Example.COM ", "new@example.com")
    raw_links = either(
        *seed.links,
        seed.links[0][:-1] + ("0" if seed.links[0][-1] != "0" else "1"),
        seed.links[0].upper(),
        sha256_hex(seed.links[0]),
        seed.links[0] + "0",
    )
    reasons = either(*InvalidationReason, *(str(r) for r in InvalidationReason))
    requesters = either(
        Requester(user_id=MENTOR),
        Requester(email=STUDENT),
        Requester.system(),
        Requester(user_id=MENTOR + 100),
    )
    moments = either(T0 + timedelta(days=2), T0 - timedelta(days=400))
    durations = either(timedelta(minutes=30), timedelta(days=7))
    texts = either("fine", "")
    metadata_maps = either({"k": "v"}, {"nested": {"list": [1, 2.5, None]}}, {})
    token_ids = either(1, 2, 3, 10**6)
    guest_ids = either(None, 1, 2)
    scopes = either(None, seed.booking.id, seed.bystander.id, 10**6)
    return {
        "request_inbox_link": {"email": emails, "booking_id": either(None, seed.booking.id)},
        "issue_booking_link": {"email": emails, "booking_id": booking_ids},
        "generate_token_for_rescheduled_booking": {"email": emails, "booking_id": booking_ids},
        "verify_token": {"raw": raw_links, "booking_id": scopes},
        "consume_token": {"raw": raw_links, "booking_id": scopes},
        "invalidate_token": {"token_id": token_ids, "reason": reasons},
        "invalidate_tokens_by_booking_id": {
            "booking_id": booking_ids,
            "reason": reasons,
            "metadata": metadata_maps,
        },
        "log_access": {
            "guest_id": guest_ids,
            "endpoint": texts,
            "action": either("VIEW"),
            "resource_id": either(None, "1"),
            "success": either(True, False),
            "metadata": metadata_maps,
        },
        "block_guest": {"email": emails},
        "unblock_guest": {"email": emails},
        "get_guest": {"email": emails},
        "token_stats": {},
        "count_expired_tokens": {"expired_for": durations},
        "purge_expired_tokens": {"expired_for": durations, "batch_size": either(1, 1000)},
        "tokens_for_booking": {"booking_id": booking_ids},
        "audit_trail": {
            "booking_id": either(None, seed.booking.id),
            "guest_id": guest_ids,
            "limit": either(1, 100),
        },
        "book_session": {
            "mentor_id": either(MENTOR),
            "guest_email": emails,
            "start_time": moments,
            "duration": durations,
            "uid": either(None, seed.booking.uid, "fresh-uid"),
        },
        "cancel_session": {
            "booking_id": booking_ids,
            "reason": texts,
            "cancelled_by": either("mentor", "student"),
            "requester": requesters,
        },
        "reschedule_session": {
            "booking_id": booking_ids,
            "new_start": moments,
            "requester": requesters,
        },
        "mark_session_as_no_show": {"booking_id": booking_ids, "requester": requesters},
        "mark_session_complete": {"booking_id": booking_ids},
        "create_rating": {
            "booking_id": booking_ids,
            "student_profile_id": either(PROFILE),
            "rating": either(1, 5, 0, 6),
            "feedback": either(None, "great", "y" * 2_001),
        },
        "get_booking": {"booking_id": booking_ids},
        "get_rating": {"booking_id": booking_ids},
        "create_incident": {
            "student_profile_id": either(PROFILE),
            "booking_uid": either(seed.booking.uid, "unknown-uid"),
            "type": either(*IncidentType, "late", "NO_SHOW"),
            "description": either("", "late again", "z" * 5_001),
            "reported_by_user_id": either(None, MENTOR),
        },
        "cancel_with_link": {"raw": raw_links, "reason": texts, "booking_id": scopes},
        "reschedule_with_link": {"raw": raw_links, "new_start": moments, "booking_id": scopes},
        "rate_with_link": {
            "raw": raw_links,
            "rating": either(1, 5, 0, 6),
            "feedback": either(None, "great", "y" * 2_001),
            "booking_id": scopes,
        },
        "report_with_link": {
            "raw": raw_links,
            "type": either(*IncidentType, "late", "NO_SHOW"),
            "description": either("", "late again", "z" * 5_001),
            "booking_id": scopes,
        },
    }


def method(world: World, name: str) -> Callable[..., Any]:
    for service in (world.guests, world.bookings, world.ratings, world.quality):
        if hasattr(service, name):
            return getattr(service, name)  # type: ignore[no-any-return]
    raise AssertionError(f"no service has {name}")


METHODS = [
    "request_inbox_link",
    "issue_booking_link",
    "generate_token_for_rescheduled_booking",
    "verify_token",
    "consume_token",
    "invalidate_token",
    "invalidate_tokens_by_booking_id",
    "log_access",
    "block_guest",
    "unblock_guest",
    "get_guest",
    "token_stats",
    "count_expired_tokens",
    "purge_expired_tokens",
    "tokens_for_booking",
    "audit_trail",
    "book_session",
    "cancel_session",
    "reschedule_session",
    "mark_session_as_no_show",
    "mark_session_complete",
    "create_rating",
    "get_booking",
    "get_rating",
    "create_incident",
    "cancel_with_link",
    "reschedule_with_link",
    "rate_with_link",
    "report_with_link",
]

# Methods that take a link: a refused link may add its one `VERIFY_TOKEN` entry (R7, §8.2).
LINK_TAKERS = frozenset(
    {
        "verify_token",
        "consume_token",
        "cancel_with_link",
        "reschedule_with_link",
        "rate_with_link",
        "report_with_link",
    }
)


def test_every_public_service_method_is_fuzzed() -> None:
    """The fuzzed list is every public method of the four services (SPEC §4 and beyond)."""
    world = World.build(InMemoryUnitOfWork())
    public = {
        name
        for service in (world.guests, world.bookings, world.ratings, world.quality)
        for name in dir(service)
        if not name.startswith("_") and callable(getattr(service, name))
    }
    assert public == set(METHODS)
    with memory_world() as (_, seed):
        assert list(strategies(seed)) == METHODS


# --- storages: a fresh seeded world per example ---------------------------------------------


@attrs.define
class SeededTemplate:
    """A seeded SQLite database built once and cloned (backup API) for every example."""

    connection: sqlite3.Connection | None = None
    seed: Seed | None = None
    now: datetime = T0
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def clone(self) -> tuple[sqlite3.Connection, Seed, datetime]:
        with self.lock:
            if self.connection is None:
                self.connection = sqlite3.connect(":memory:", check_same_thread=False)
                template = self.connection
                engine = create_engine("sqlite://", creator=lambda: template, poolclass=StaticPool)
                metadata.create_all(engine)
                world = World.build(SqlAlchemyUnitOfWork(engine))
                self.seed = world.seed()
                self.now = world.clock.now()
            copy = sqlite3.connect(":memory:", check_same_thread=False)
            self.connection.backup(copy)
            assert self.seed is not None
            return copy, self.seed, self.now


TEMPLATE = SeededTemplate()


@contextmanager
def memory_world() -> Iterator[tuple[World, Seed]]:
    world = World.build(InMemoryUnitOfWork())
    yield world, world.seed()


@contextmanager
def sqlite_world() -> Iterator[tuple[World, Seed]]:
    connection, seed, now = TEMPLATE.clone()
    engine = create_engine("sqlite://", creator=lambda: connection, poolclass=StaticPool)
    try:
        yield World.build(SqlAlchemyUnitOfWork(engine), start=now), seed
    finally:
        engine.dispose()
        connection.close()


WORLDS = {"memory": memory_world, "sqlite": sqlite_world}


# --- the property --------------------------------------------------------------------------


def lasting_rows(world: World) -> dict[str, list[Any]]:
    """Stored rows, less the `VERIFY_TOKEN` entries a refused verification writes (R7)."""
    stored = rows(world.uow)
    if isinstance(world.uow, InMemoryUnitOfWork):
        stored.pop("audit_by_resource")
        stored.pop("audit_by_guest")
        # Each entry is stored as written, with its metadata: (NewAuditEntry, metadata).
        stored["audit"] = [(i, e) for i, e in stored["audit"] if e[0].action != "VERIFY_TOKEN"]
    else:
        stored["magiclink_audit_log"] = [
            r for r in stored["magiclink_audit_log"] if "VERIFY_TOKEN" not in r
        ]
    return stored


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:100]}...({len(text)} chars)"


def call_hostile(world: World, name: str, arguments: dict[str, Any]) -> None:
    """Call the method; only magiclink errors may escape, and a refusal writes nothing."""
    before = lasting_rows(world) if name in LINK_TAKERS else rows(world.uow)
    shown = ", ".join(f"{k}={short(v)}" for k, v in arguments.items())
    try:
        method(world, name)(**arguments)
    except MagicLinkError:
        after = lasting_rows(world) if name in LINK_TAKERS else rows(world.uow)
        assert after == before, f"{name}({shown}) was refused but wrote to storage"
    except Exception as error:
        raise AssertionError(
            f"{type(error).__name__} escaped from {name}({shown}): {short(str(error))}"
        ) from error


@pytest.mark.parametrize("storage", list(WORLDS))
@pytest.mark.parametrize("name", METHODS)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_hostile_arguments_raise_only_magiclink_errors_and_write_nothing(
    storage: str, name: str, data: st.DataObject
) -> None:
    """SPEC §4: no foreign exception escapes a service; a refused call changes nothing."""
    with WORLDS[storage]() as (world, seed):
        parameters = strategies(seed)[name]
        arguments = {param: data.draw(s, label=param) for param, s in parameters.items()}
        call_hostile(world, name, arguments)


# --- pinned cases ----------------------------------------------------------------------------


def deeply_nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


PINNED: list[tuple[str, Callable[[World, Seed], Any]]] = [
    (
        "cancel_session-cancelled_by-list",
        lambda w, s: w.bookings.cancel_session(
            s.booking.id,
            "r",
            ["mentor"],  # type: ignore[arg-type]
            Requester.system(),
        ),
    ),
    (
        "cancel_session-cancelled_by-dict",
        lambda w, s: w.bookings.cancel_session(
            s.booking.id,
            "r",
            {},  # type: ignore[arg-type]
            Requester.system(),
        ),
    ),
    (
        "count_expired_tokens-timedelta-max",
        lambda w, s: w.guests.count_expired_tokens(timedelta.max),
    ),
    (
        "purge_expired_tokens-timedelta-max",
        lambda w, s: w.guests.purge_expired_tokens(timedelta.max),
    ),
    (
        "log_access-deeply-nested-metadata",
        lambda w, s: w.guests.log_access(None, "e", "a", metadata={"a": deeply_nested(100_000)}),
    ),
    (
        "invalidate_tokens_by_booking_id-deeply-nested-metadata",
        lambda w, s: w.guests.invalidate_tokens_by_booking_id(
            s.booking.id, "manual_revocation", metadata={"a": deeply_nested(100_000)}
        ),
    ),
    (
        "book_session-year-9999",
        lambda w, s: w.bookings.book_session(MENTOR, STUDENT, datetime.max.replace(tzinfo=UTC)),
    ),
    (
        "reschedule_session-year-1-east-of-utc",
        lambda w, s: w.bookings.reschedule_session(s.booking.id, DATETIMES[3], Requester.system()),
    ),
    (
        "request_inbox_link-lone-surrogate",
        lambda w, s: w.guests.request_inbox_link("\ud800@example.com"),
    ),
    (
        "create_incident-huge-id",
        lambda w, s: w.quality.create_incident(PROFILE, s.booking.uid, "late", "", 2**64),
    ),
]


@pytest.mark.parametrize("storage", list(WORLDS))
@pytest.mark.parametrize(("case", "call"), PINNED, ids=[case for case, _ in PINNED])
def test_pinned_hostile_call(storage: str, case: str, call: Callable[[World, Seed], Any]) -> None:
    """Escapes found by the fuzzer, and edges it rarely reaches, as plain regression tests."""
    with WORLDS[storage]() as (world, seed):
        before = rows(world.uow)
        try:
            call(world, seed)
        except MagicLinkError:
            assert rows(world.uow) == before, f"{case}: refused but wrote"
        except Exception as error:
            raise AssertionError(f"{case}: {type(error).__name__} escaped: {error}") from error


@pytest.mark.parametrize(
    "requester",
    [
        Requester(is_system="no"),  # type: ignore[arg-type]
        Requester(is_system="false"),  # type: ignore[arg-type]
        Requester(is_system=1),  # type: ignore[arg-type]
        Requester(is_system=[0]),  # type: ignore[arg-type]
        Requester(user_id=True),  # bool is an int to the type checker
    ],
    ids=["is_system-no", "is_system-false", "is_system-1", "is_system-list", "user_id-True"],
)
def test_a_requester_with_fields_of_the_wrong_type_gains_no_rights(requester: Requester) -> None:
    """Only `is_system=True` is the platform, only an int `user_id` is a mentor: a string
    "false" from a host's JSON must not cancel someone else's booking."""
    world = World.build(InMemoryUnitOfWork())
    booking = world.bookings.book_session(1, STUDENT, T0 + timedelta(days=1)).booking
    with pytest.raises((InvalidInput, AccessDenied)):
        world.bookings.cancel_session(booking.id, "r", "mentor", requester)
    stored = world.stored_booking(booking.id)
    assert stored is not None
    assert stored.status is BookingStatus.SCHEDULED
