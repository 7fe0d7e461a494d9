"""Every storage fault along every lifecycle operation: R9, R8 / §5.2 and §5.4 hold.

For each operation (cancel by mentor and by student, no-show, reschedule, rating, incident,
inbox link, booking, consumption, and the four link actions of §8.1) the operation first runs
cleanly through a `FaultyUnitOfWork` that counts every storage call, transaction begin and
commit: that gives its n calls. Then, for every k in 1..n, on fresh state, the k-th call fails:

* permanently: a failure inside the booking change itself raises `StorageError` and leaves
  storage exactly as it was; a failure after the change committed (invalidation, re-issue)
  does not fail the operation (R9.1), which returns normally and logs at ERROR;
* transiently, once: retried exactly once (R9.4), so the operation fully succeeds;
* transiently, twice on the same call: the single retry fails too, so it gives up, exactly
  as for a permanent fault (a second retry would have succeeded and failed the test).

Whatever failed: every invalidated token has its `INVALIDATE_TOKEN` entries and every entry
its invalidated tokens (both land or neither, R8); the booking's links are invalidated all
together or not at all; the bystander booking is untouched; and after a committed
cancellation, no-show, reschedule, rating or incident no old link verifies, even when the batch
invalidation failed (fail-closed, §5.4, §8.4: the event advanced the booking's link generation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from sqlalchemy import Engine

from magiclink import (
    AuditAction,
    BookingOutcome,
    BookingService,
    BookingStatus,
    IncidentType,
    InvalidationReason,
    LinkMessage,
    MagicLinkError,
    RescheduleOutcome,
    StorageError,
    TokenExpiredOrUsed,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import Notifier, UnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork
from tests.databases import reset_schema
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
    rows,
    sha256_hex,
    student,
)

NEW_GUEST = "newcomer@example.com"
MODES = ["permanent", "transient", "transient_twice"]


@attrs.frozen
class Operation:
    """One operation under test and what R9 / §5.4 say about it."""

    name: str
    run: Callable[[World, Seed], Any]
    # The first `change_transactions` transactions are the operation itself (a failure
    # there raises and writes nothing); later ones are R9 after-steps.
    change_transactions: int = 1
    reason: InvalidationReason | None = None
    # After the change commits, the old links are refused whatever failed (§5.4).
    fail_closed: bool = False
    status: BookingStatus | None = None


OPERATIONS = [
    Operation(
        "cancel_by_mentor",
        lambda w, s: w.bookings.cancel_session(s.booking.id, "ill", "mentor", mentor()),
        reason=InvalidationReason.BOOKING_CANCELLED,
        fail_closed=True,
        status=BookingStatus.CANCELLED,
    ),
    Operation(
        "cancel_by_student",
        lambda w, s: w.bookings.cancel_session(s.booking.id, "busy", "student", student()),
        reason=InvalidationReason.BOOKING_CANCELLED,
        fail_closed=True,
        status=BookingStatus.CANCELLED,
    ),
    Operation(
        "no_show",
        lambda w, s: w.bookings.mark_session_as_no_show(s.booking.id, mentor()),
        reason=InvalidationReason.BOOKING_CANCELLED,
        fail_closed=True,
        status=BookingStatus.NO_SHOW,
    ),
    Operation(
        "reschedule",
        lambda w, s: w.bookings.reschedule_session(s.booking.id, T0 + timedelta(days=2), student()),
        reason=InvalidationReason.BOOKING_RESCHEDULED,
        fail_closed=True,
        status=BookingStatus.SCHEDULED,
    ),
    Operation(
        "rate",
        lambda w, s: w.ratings.create_rating(s.booking.id, PROFILE, 4, "fine"),
        reason=InvalidationReason.RATING_SUBMITTED,
        fail_closed=True,
        status=BookingStatus.SCHEDULED,
    ),
    Operation(
        "incident",
        lambda w, s: w.quality.create_incident(PROFILE, s.booking.uid, IncidentType.LATE, "late"),
        reason=InvalidationReason.INCIDENT_REPORTED,
        fail_closed=True,
        status=BookingStatus.SCHEDULED,
    ),
    # §8.1 / §8.4: the link actions, with the booking's first link.
    Operation(
        "cancel_with_link",
        lambda w, s: w.bookings.cancel_with_link(s.links[0], "sick"),
        reason=InvalidationReason.BOOKING_CANCELLED,
        fail_closed=True,
        status=BookingStatus.CANCELLED,
    ),
    Operation(
        "reschedule_with_link",
        lambda w, s: w.bookings.reschedule_with_link(s.links[0], T0 + timedelta(days=2)),
        reason=InvalidationReason.BOOKING_RESCHEDULED,
        fail_closed=True,
        status=BookingStatus.SCHEDULED,
    ),
    Operation(
        "rate_with_link",
        lambda w, s: w.ratings.rate_with_link(s.links[0], 4, "fine"),
        reason=InvalidationReason.RATING_SUBMITTED,
        fail_closed=True,
        status=BookingStatus.SCHEDULED,
    ),
    Operation(
        "report_with_link",
        lambda w, s: w.quality.report_with_link(s.links[0], "late", "late"),
        reason=InvalidationReason.INCIDENT_REPORTED,
        fail_closed=True,
        status=BookingStatus.SCHEDULED,
    ),
    Operation(
        "request_inbox_link",
        lambda w, s: w.guests.request_inbox_link(STUDENT, s.booking.id),
        change_transactions=99,
    ),
    Operation(
        "book_session",
        lambda w, s: w.bookings.book_session(MENTOR, NEW_GUEST, T0 + timedelta(days=3)),
    ),
    Operation(
        "consume",
        lambda w, s: w.guests.consume_token(s.live[1]),
        change_transactions=99,
    ),
]

# Events whose links only the link generation kills (the booking stays open, §8.4).
REVOKED_BY_GENERATION = frozenset(
    {InvalidationReason.RATING_SUBMITTED, InvalidationReason.INCIDENT_REPORTED}
)

# --- storages ------------------------------------------------------------------------------

Fresh = Callable[[], UnitOfWork]


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fresh]:
    """A factory of empty storages of one kind (a new one for every replay)."""
    if request.param == "memory":
        yield InMemoryUnitOfWork
    elif request.param == "sqlite":
        files = SqliteFiles(tmp_path)

        def sqlite() -> UnitOfWork:
            files.dispose()  # the previous replay's engine: keep file handles bounded
            return SqlAlchemyUnitOfWork(files.engine())

        yield sqlite
        files.dispose()
    else:
        engine: Engine = request.getfixturevalue("postgres_engine")

        def postgres() -> UnitOfWork:
            reset_schema(engine)
            return SqlAlchemyUnitOfWork(engine)

        yield postgres


def faulty_world(fresh: Fresh) -> tuple[FaultyUnitOfWork, World, Seed]:
    faulty = FaultyUnitOfWork(fresh(), count_begins=True, count_commits=True)
    world = World.build(faulty)
    seed = world.seed()
    faulty.clear_calls()
    return faulty, world, seed


def learn_calls(fresh: Fresh, operation: Operation) -> list[str]:
    """The storage calls the operation makes when nothing fails."""
    faulty, world, seed = faulty_world(fresh)
    operation.run(world, seed)
    assert not faulty.failures
    calls = list(faulty.calls)
    assert calls[0] == "transaction"
    assert calls[-1] == "commit"
    return calls


# --- the check -----------------------------------------------------------------------------


def replay_with_fault(
    fresh: Fresh,
    operation: Operation,
    calls: list[str],
    k: int,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Replay the operation on fresh state with call k failing in `mode`; check everything."""
    faulty, world, seed = faulty_world(fresh)
    before = rows(faulty)
    name = calls[k - 1]
    if mode == "permanent":
        faulty.arm(k)
    elif mode == "transient":
        faulty.arm(k, transient=True)
    else:  # the same call fails in the first attempt and in the retry
        faulty.arm(calls[:k].count(name), transient=True, times=2, match=name)
    in_change = calls[:k].count("transaction") <= operation.change_transactions
    gave_up = mode != "transient"
    caplog.clear()

    result: Any = None
    error: MagicLinkError | None = None
    try:
        result = operation.run(world, seed)
    except MagicLinkError as caught:
        error = caught
    faulty.disarm()
    where = f"{operation.name}: {mode} fault at call {k} ({name})"

    assert faulty.failures == [name] * (2 if mode == "transient_twice" else 1), where
    if gave_up and in_change:
        # A failure inside the booking change: it raises, and nothing at all was written.
        assert isinstance(error, StorageError), where
        assert error.transient is (mode == "transient_twice"), where
        assert rows(faulty) == before, where
    else:
        # Retried once and succeeded, or an after-step failed: the operation returns (R9.1).
        assert error is None, f"{where}: raised {error!r}"
    step_failed = gave_up and not in_change
    if step_failed:
        errors = [r for r in caplog.records if r.name == "magiclink" and r.levelname == "ERROR"]
        assert errors, f"{where}: the failed after-step was not logged at ERROR (R9.2)"

    assert audit_violations(world, [seed.booking.id, seed.bystander.id]) == [], where
    assert world.guests.verify_token(seed.bystander_link).token.booking_id == seed.bystander.id

    if error is None:
        check_committed(world, seed, operation, result, failed_step=step_failed, where=where)


def check_committed(
    world: World, seed: Seed, operation: Operation, result: Any, *, failed_step: bool, where: str
) -> None:
    """What must hold once the operation returned (possibly with a failed after-step)."""
    booking = world.stored_booking(seed.booking.id)
    assert booking is not None
    if operation.status is not None:
        assert booking.status is operation.status, where
    tokens = {t.token_hash: t for t in world.guests.tokens_for_booking(seed.booking.id)}
    old = [tokens[sha256_hex(raw)] for raw in seed.links]

    if operation.reason is not None:
        newly = [t for t in old if t.invalidation_reason == operation.reason]
        # All the booking's links together, or (the invalidation step failed) none of them.
        assert len(newly) in (0, len(old)), where
        if not failed_step:
            assert len(newly) == len(old), where
        if newly:
            assert all(t.invalidated and t.used_at is not None for t in newly), where
    if operation.fail_closed:
        for raw in seed.links:
            with pytest.raises(TokenExpiredOrUsed):
                world.guests.verify_token(raw)
        if failed_step and operation.reason in REVOKED_BY_GENERATION:
            # §8.4: the batch invalidation failed; the event's own transaction refuses them.
            refusals = world.audit(AuditAction.VERIFY_TOKEN)[: len(seed.links)]
            reasons = {entry.metadata["reason"] for entry in refusals}
            assert "links_revoked" in reasons, f"{where}: {reasons}"

    if operation.name in ("reschedule", "reschedule_with_link"):
        assert isinstance(result, RescheduleOutcome)
        assert booking.revision == 1, where
        fresh_tokens = [t for t in tokens.values() if t.booking_revision == 1]
        if result.link_issued:
            assert len(fresh_tokens) == 1, where
            assert result.link_sent
            assert world.guests.verify_token(world.last_raw()).token.id == fresh_tokens[0].id
        else:
            assert failed_step, where
            assert fresh_tokens == [], where
    elif operation.name in ("rate", "rate_with_link"):
        with world.uow.transaction(readonly=True) as tx:
            assert tx.ratings.get_by_booking(seed.booking.id) is not None, where
    elif operation.name in ("incident", "report_with_link"):
        with world.uow.transaction(readonly=True) as tx:
            assert len(tx.incidents.list_by_booking_uid(seed.booking.uid)) == 1, where
    elif operation.name == "request_inbox_link":
        assert world.guests.verify_token(result.raw).token.id == result.token_id
    elif operation.name == "consume":
        assert tokens[sha256_hex(seed.live[1])].used_at is not None, where
        with pytest.raises(TokenExpiredOrUsed):
            world.guests.verify_token(seed.live[1])
    elif operation.name == "book_session":
        assert isinstance(result, BookingOutcome)
        issued = world.guests.tokens_for_booking(result.booking.id)
        created = [
            e
            for e in world.guests.audit_trail(booking_id=result.booking.id)
            if e.action == AuditAction.CREATE_TOKEN
        ]
        if result.link_sent:
            assert len(issued) == len(created) == 1, where
            assert world.guests.verify_token(world.last_raw()).token.id == issued[0].id
        else:
            # The issuing after-step failed: the booking stands, with no token and no entry.
            assert failed_step, where
            assert issued == [] and created == [], where


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
def test_every_storage_fault_along_every_operation(
    fresh: Fresh, operation: Operation, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """R9, R8, §5.2, §5.4: fail each storage call in turn; the outcome is the specified one."""
    caplog.set_level(logging.DEBUG, logger="magiclink")
    calls = learn_calls(fresh, operation)
    for k in range(1, len(calls) + 1):
        replay_with_fault(fresh, operation, calls, k, mode, caplog)


def test_a_foreign_exception_in_any_call_is_a_storage_error_and_writes_nothing(
    fresh: Fresh,
) -> None:
    """No adapter or driver exception escapes: a non-magiclink error becomes StorageError."""
    operation = next(op for op in OPERATIONS if op.name == "reschedule")
    calls = learn_calls(fresh, operation)
    for k in range(1, calls.index("commit") + 1):
        faulty, world, seed = faulty_world(fresh)
        before = rows(faulty)
        faulty.arm(k, error_factory=lambda name: RuntimeError(f"driver exploded in {name}"))
        with pytest.raises(StorageError) as caught:
            operation.run(world, seed)
        assert caught.value.transient is False
        faulty.disarm()
        assert rows(faulty) == before


class FailingNotifier(Notifier):
    """A notifier whose mail server is down."""

    def __init__(self) -> None:
        self.attempts = 0

    def send(self, message: LinkMessage) -> None:
        self.attempts += 1
        raise ConnectionError("SMTP server unreachable")


def test_a_failing_notifier_never_fails_the_booking_operation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """R9.1: mail failure after booking or rescheduling: the operation returns, logged."""
    caplog.set_level(logging.DEBUG, logger="magiclink")
    world = World.build(InMemoryUnitOfWork())
    seed = world.seed()
    notifier = FailingNotifier()
    bookings = BookingService(world.uow, world.guests, notifier=notifier)

    booked = bookings.book_session(MENTOR, NEW_GUEST, T0 + timedelta(days=3))
    assert booked.link_sent is False
    assert len(world.guests.tokens_for_booking(booked.booking.id)) == 1

    moved = bookings.reschedule_session(seed.booking.id, T0 + timedelta(days=2), mentor())
    assert (moved.link_issued, moved.link_sent) == (True, False)
    assert notifier.attempts == 2
    for raw in seed.links:
        with pytest.raises(TokenExpiredOrUsed):
            world.guests.verify_token(raw)
    assert audit_violations(world, [seed.booking.id, booked.booking.id]) == []
    failures = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "magiclink"]
    assert len(failures) == 2
