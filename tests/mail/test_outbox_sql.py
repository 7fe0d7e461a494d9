"""The outbox on SQLite, PostgreSQL and MariaDB (§11.2): same transaction, exclusive claims."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from magiclink import InvalidationReason, InvalidInput, OutboxWorker, Settings, build_services
from magiclink.adapters.memory import InMemoryNotifier, ManualClock
from magiclink.adapters.sqlalchemy import SqlAlchemyOutbox, SqlAlchemyUnitOfWork, metadata
from magiclink.ports import OutboxState
from tests.databases import any_engine  # noqa: F401
from tests.mail.test_outbox import FlakyNotifier

START = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)


def _world(engine: Engine, notifier: object):  # type: ignore[no-untyped-def]
    uow = SqlAlchemyUnitOfWork(engine)
    outbox = SqlAlchemyOutbox(uow)
    clock = ManualClock(START - timedelta(days=1))
    services = build_services(
        uow,
        notifier=InMemoryNotifier(),
        clock=clock,
        settings=Settings(mail_via_outbox=True),
        outbox=outbox,
    )
    worker = OutboxWorker(services, notifier, outbox=outbox, max_attempts=3, rng=random.Random(2))  # type: ignore[arg-type]
    return services, outbox, clock, worker


def test_intent_is_stored_with_the_booking_and_delivered_once_s11_2(any_engine: Engine) -> None:  # noqa: F811
    notifier = FlakyNotifier(failures=1)
    services, outbox, clock, worker = _world(any_engine, notifier)
    booking = services.bookings.book_session(7, "g@example.org", START).booking
    [message] = outbox.list()
    assert (message.booking_id, message.state) == (booking.id, OutboxState.PENDING)
    assert outbox.status().counts["pending"] == 1
    assert worker.deliver_due().retried == 1
    [dead] = services.guests.tokens_for_booking(booking.id)
    assert dead.invalidation_reason is InvalidationReason.DELIVERY_FAILED
    clock.advance(timedelta(hours=2))
    assert worker.deliver_due().delivered == 1
    assert worker.deliver_due().delivered == 0
    raw = notifier.sent[0].url.split("token=")[1]
    assert services.guests.verify_token(raw).token.booking_id == booking.id
    status = outbox.status()
    assert status.counts["delivered"] == 1 and status.oldest_pending_at is None
    # no raw token at rest: the table holds no 64-hex value
    with any_engine.connect() as connection:
        rows = connection.execute(select(metadata.tables["magiclink_outbox"])).all()
    assert raw not in repr(rows)


def test_claims_are_exclusive_across_threads_s11_2(any_engine: Engine) -> None:  # noqa: F811
    """Racing workers never claim one message twice (SKIP LOCKED / SQLite's write lock)."""
    services, outbox, clock, _ = _world(any_engine, FlakyNotifier())
    for n in range(30):
        services.bookings.book_session(7, f"g{n}@example.org", START)
    claimed: list[int] = []
    lock = threading.Lock()

    def claim() -> None:
        while batch := outbox.claim_due(now=clock.now(), limit=3, lease=timedelta(minutes=5)):
            with lock:
                claimed.extend(m.id for m in batch)

    threads = [threading.Thread(target=claim) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(m.id for m in outbox.list())
    assert len(set(claimed)) == 30


def test_rollback_of_the_booking_rolls_back_its_intent_s11_2(any_engine: Engine) -> None:  # noqa: F811
    services, outbox, _, _ = _world(any_engine, FlakyNotifier())
    services.bookings.book_session(7, "g@example.org", START, uid="same")
    with pytest.raises(InvalidInput):
        services.bookings.book_session(7, "h@example.org", START, uid="same")
    assert len(outbox.list()) == 1
