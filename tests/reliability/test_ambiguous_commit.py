"""A commit that lands but whose acknowledgement is lost must not be applied or refused twice.

The classic transient failure is a connection lost during COMMIT: the database committed,
the driver reports a lost connection, the adapter classifies it as transient (R9.4), and the
service retries the whole unit of work once. The retry then runs against the committed
state. For every operation the caller must still get the outcome of one successful call
(R9.1: a committed booking change returns normally, and its after-steps run), applied
once: not `BookingClosed` for a cancellation that happened, not `DuplicateRating` for the
rating just stored, not `TokenExpiredOrUsed` for the consumption that won, not a second
incident.

`LostCommitAck` commits through the wrapped storage, then raises the transient
`StorageError` a lost connection would raise, once, at the chosen commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from magiclink import (
    BookingStatus,
    IncidentType,
    InvalidationReason,
    MagicLinkError,
    StorageError,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import Transaction, UnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork
from tests.reliability.world import (
    MENTOR,
    PROFILE,
    STUDENT,
    T0,
    Seed,
    SqliteFiles,
    World,
    audit_violations,
    mentor,
    sha256_hex,
)


class LostCommitAck(FaultyUnitOfWork):
    """Commits for real, then reports a lost connection at the `lose_at`-th commit."""

    def __init__(self, inner: UnitOfWork) -> None:
        super().__init__(inner)
        self.lose_at: int | None = None
        self.commits = 0

    def transaction(self, *, readonly: bool = False) -> Transaction:
        tx = super().transaction(readonly=readonly)
        commit = tx.commit

        def commit_then_lose_ack() -> None:
            commit()
            self.commits += 1
            if self.commits == self.lose_at:
                raise StorageError(
                    "Storage error (OperationalError): connection lost", transient=True
                )

        tx.commit = commit_then_lose_ack  # type: ignore[method-assign]
        return tx


Check = Callable[[World, Seed, Any], None]


def cancelled(world: World, seed: Seed, _result: Any) -> None:
    booking = world.stored_booking(seed.booking.id)
    assert booking is not None and booking.status is BookingStatus.CANCELLED
    tokens = world.guests.tokens_for_booking(seed.booking.id)
    assert {t.invalidation_reason for t in tokens} == {InvalidationReason.BOOKING_CANCELLED}


def rescheduled(world: World, seed: Seed, result: Any) -> None:
    booking = world.stored_booking(seed.booking.id)
    assert booking is not None and booking.revision == 1
    assert result.link_issued


def booked(world: World, _seed: Seed, result: Any) -> None:
    assert result.link_sent
    assert len(world.guests.tokens_for_booking(result.booking.id)) == 1


def rated(world: World, seed: Seed, _result: Any) -> None:
    tokens = world.guests.tokens_for_booking(seed.booking.id)
    assert {t.invalidation_reason for t in tokens} == {InvalidationReason.RATING_SUBMITTED}


def one_incident(world: World, seed: Seed, _result: Any) -> None:
    with world.uow.transaction(readonly=True) as tx:
        assert len(tx.incidents.list_by_booking_uid(seed.booking.uid)) == 1


def issued(world: World, _seed: Seed, result: Any) -> None:
    assert world.guests.verify_token(result.raw).token.id == result.token_id


def consumed(world: World, seed: Seed, result: Any) -> None:
    assert result.token.token_hash == sha256_hex(seed.live[0])


def counted(world: World, seed: Seed, result: Any) -> None:
    assert result == len(seed.links)  # consumed ones included (R5.3)


OPERATIONS: list[tuple[str, Callable[[World, Seed], Any], Check]] = [
    (
        "cancel",
        lambda w, s: w.bookings.cancel_session(s.booking.id, "ill", "mentor", mentor()),
        cancelled,
    ),
    (
        "reschedule",
        lambda w, s: w.bookings.reschedule_session(s.booking.id, T0 + timedelta(days=2), mentor()),
        rescheduled,
    ),
    (
        "book_session",
        lambda w, s: w.bookings.book_session(MENTOR, "new@example.com", T0 + timedelta(days=2)),
        booked,
    ),
    ("rate", lambda w, s: w.ratings.create_rating(s.booking.id, PROFILE, 5), rated),
    (
        "incident",
        lambda w, s: w.quality.create_incident(PROFILE, s.booking.uid, IncidentType.LATE, "x"),
        one_incident,
    ),
    ("request_inbox_link", lambda w, s: w.guests.request_inbox_link(STUDENT, s.booking.id), issued),
    ("consume", lambda w, s: w.guests.consume_token(s.live[0]), consumed),
    (
        "invalidate_tokens_by_booking_id",
        lambda w, s: w.guests.invalidate_tokens_by_booking_id(s.booking.id, "manual_revocation"),
        counted,
    ),
]


@pytest.fixture(params=["memory", "sqlite"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], UnitOfWork]]:
    if request.param == "memory":
        yield InMemoryUnitOfWork
        return
    files = SqliteFiles(tmp_path)
    yield lambda: SqlAlchemyUnitOfWork(files.engine())
    files.dispose()


@pytest.mark.parametrize(("name", "run", "check"), OPERATIONS, ids=[op[0] for op in OPERATIONS])
def test_a_lost_commit_acknowledgement_is_not_applied_or_refused_twice(
    fresh: Callable[[], UnitOfWork], name: str, run: Callable[[World, Seed], Any], check: Check
) -> None:
    """R9.1 + R9.4: the first commit of the operation lands but reports a transient error."""
    uow = LostCommitAck(fresh())
    world = World.build(uow)
    seed = world.seed()
    uow.commits, uow.lose_at = 0, 1
    try:
        result = run(world, seed)
    except MagicLinkError as error:
        pytest.fail(f"{name}: its first commit landed, yet it raised {error!r}")
    check(world, seed, result)
    assert audit_violations(world, [seed.booking.id]) == []
