"""The claims of docs/security.md that no other security test covers: stale links (fail-closed
included), replay, stored hashes only, enumeration, token entropy and issuing rate limits."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, MetaData, select

from magiclink import (
    AuditAction,
    IncidentType,
    InvalidToken,
    MagicLinkToken,
    QualityRepository,
    RateLimited,
    RatingService,
    Requester,
    TokenExpiredOrUsed,
)
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import UnitOfWork
from magiclink.testing import hash_token
from magiclink.testing.faults import FaultyUnitOfWork
from tests.security.harness import MENTOR, World

ADA = "ada@example.com"
MOVED = timedelta(days=1)

Event = Callable[[World, int], object]
EVENTS: dict[str, Event] = {
    "mentor_cancels": lambda w, b: w.bookings.cancel_session(
        b, "", "mentor", Requester(user_id=MENTOR)
    ),
    "student_cancels": lambda w, b: w.bookings.cancel_session(
        b, "", "student", Requester(email=ADA)
    ),
    "no_show": lambda w, b: w.bookings.mark_session_as_no_show(b, Requester.system()),
    "reschedule": lambda w, b: w.bookings.reschedule_session(
        b, w.clock.now() + MOVED, Requester.system()
    ),
    "rating": lambda w, b: RatingService(w.uow, w.guests).create_rating(b, "profile-1", 5),
    "incident": lambda w, b: QualityRepository(w.uow, w.guests).create_incident(
        "profile-1", _uid(w, b), IncidentType.LATE, ""
    ),
}


def _uid(world: World, booking_id: int) -> str:
    with world.uow.transaction(readonly=True) as tx:
        booking = tx.bookings.get(booking_id)
    assert booking is not None
    return booking.uid


@pytest.mark.parametrize("event", EVENTS)
def test_every_lifecycle_event_kills_the_bookings_links(uow: UnitOfWork, event: str) -> None:
    world = World.over(uow)
    booking, first = world.book_link(ADA)
    second = world.inbox(ADA, booking.id)

    EVENTS[event](world, booking.id)

    for link in (first, second):
        with pytest.raises(TokenExpiredOrUsed):
            world.guests.consume_token(link.raw)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("mentor_cancels", "booking_closed"),
        ("no_show", "booking_closed"),
        ("reschedule", "booking_rescheduled"),
        ("rating", "links_revoked"),
        ("incident", "links_revoked"),
    ],
)
def test_a_stale_link_is_refused_even_when_its_invalidation_failed(
    uow: UnitOfWork, event: str, reason: str
) -> None:
    """§5.4 / §8.4 fail-closed: the batch invalidation fails (and is not retried into
    success), yet verification refuses the link from the booking's own state — for a rating
    or an incident, from the link generation the event advanced in its own transaction."""
    faulty = FaultyUnitOfWork(uow)
    world = World.over(faulty)
    booking, link = world.book_link(ADA)
    faulty.arm(1, match="tokens.invalidate_by_booking", times=2)

    EVENTS[event](world, booking.id)  # R9: the booking operation itself succeeds

    assert faulty.failures  # the invalidation really failed
    assert not world.stored(link).invalidated
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.consume_token(link.raw)
    [entry] = world.entries(AuditAction.VERIFY_TOKEN)
    assert entry.metadata["reason"] == reason


def test_a_link_whose_booking_is_gone_is_refused(uow: UnitOfWork) -> None:
    """A host deleted the booking row; the token still points at it (§5.4)."""
    world = World.over(uow)
    live = world.inbox(ADA)
    with uow.transaction() as tx:
        orphan = tx.tokens.add(
            MagicLinkToken.new(
                token_hash=hash_token("0" * 64),
                guest_id=world.stored(live).guest_id,
                booking_id=987_654,
                booking_revision=0,
                expires_at=world.clock.now() + timedelta(minutes=15),
                created_at=world.clock.now(),
            )
        )
        tx.commit()

    with pytest.raises(TokenExpiredOrUsed):
        world.guests.verify_token("0" * 64)
    [entry] = world.entries(AuditAction.VERIFY_TOKEN, guest_id=orphan.guest_id)
    assert entry.metadata["reason"] == "booking_missing"


def test_a_link_works_once(uow: UnitOfWork) -> None:
    world = World.over(uow)
    _, link = world.book_link(ADA)

    assert world.guests.consume_token(link.raw).token.used_at == world.clock.now()
    for replay in (world.guests.consume_token, world.guests.verify_token):
        with pytest.raises(TokenExpiredOrUsed):
            replay(link.raw)


def test_a_link_dies_after_its_ttl(uow: UnitOfWork) -> None:
    world = World.over(uow)
    _, link = world.book_link(ADA)
    world.clock.advance(world.settings.token_ttl - timedelta(microseconds=1))
    world.guests.verify_token(link.raw)

    world.clock.advance(timedelta(microseconds=1))

    with pytest.raises(TokenExpiredOrUsed):
        world.guests.verify_token(link.raw)


def test_storage_holds_only_the_sha256_of_a_token(sqlite_engine: Engine) -> None:
    world = World.over(SqlAlchemyUnitOfWork(sqlite_engine))
    booking, link = world.book_link(ADA)
    world.guests.consume_token(link.raw)
    world.inbox(ADA, booking.id)

    tables = MetaData()
    tables.reflect(sqlite_engine)
    with sqlite_engine.connect() as connection:
        cells = [
            str(cell)
            for table in tables.sorted_tables
            for row in connection.execute(select(table))
            for cell in row
        ]
    assert hash_token(link.raw) in cells
    assert not [cell for cell in cells if link.raw in cell]


@pytest.mark.parametrize("garbage", ["", "x" * 64, "A" * 64, "0" * 65, "0" * 63, " " + "0" * 63])
def test_malformed_and_unknown_tokens_get_the_same_answer(uow: UnitOfWork, garbage: str) -> None:
    world = World.over(uow)
    world.book_link(ADA)
    answers = []
    for raw in (garbage, "0" * 64):  # malformed, then well-formed but unknown
        for check in (world.guests.verify_token, world.guests.consume_token):
            with pytest.raises(InvalidToken) as refused:
                check(raw)
            answers.append((type(refused.value), refused.value.code, str(refused.value)))

    assert set(answers) == {(InvalidToken, "UNAUTHORIZED", "Invalid token")}
    assert world.entries(AuditAction.VERIFY_TOKEN) == []  # nothing to attribute it to
    assert world.metrics.count("magiclink_verifications_total", outcome="invalid") == 4


@pytest.mark.parametrize("garbage", ["", "0" * 63, "G" * 64, None, 42, b"0" * 64])
def test_a_malformed_token_never_reaches_storage(garbage: object) -> None:
    from magiclink.adapters.memory import InMemoryUnitOfWork

    probe = FaultyUnitOfWork(InMemoryUnitOfWork(), count_begins=True)
    world = World.over(probe)

    for check in (world.guests.verify_token, world.guests.consume_token):
        with pytest.raises(InvalidToken):
            check(garbage)  # type: ignore[arg-type]

    assert probe.calls == []


def test_tokens_are_32_bytes_from_the_secrets_module(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int | None] = []

    def token_hex(nbytes: int | None = None) -> str:
        asked.append(nbytes)
        return "ab" * 32

    monkeypatch.setattr(secrets, "token_hex", token_hex)  # where SPEC §2 says tokens come from
    world = World.over(uow)

    link = world.inbox(ADA)

    assert (link.raw, asked) == ("ab" * 32, [32])


def test_a_guest_gets_one_link_per_request_interval(uow: UnitOfWork) -> None:
    world = World.over(uow)
    first = world.inbox(ADA)
    interval = world.settings.request_interval

    world.clock.advance(interval - timedelta(microseconds=1))
    with pytest.raises(RateLimited):
        world.guests.request_inbox_link(ADA)
    with pytest.raises(RateLimited):
        world.guests.request_inbox_link(ADA.upper())  # the same guest, however it is spelt

    world.clock.advance(timedelta(microseconds=1))
    second = world.guests.request_inbox_link(ADA)

    created = world.entries(AuditAction.CREATE_TOKEN)
    assert [e.metadata["token_id"] for e in created] == [second.token_id, first.token_id]
