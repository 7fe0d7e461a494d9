"""The transactional outbox and its worker on the in-memory adapter (§11.2)."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta

import pytest

from magiclink import (
    InvalidationReason,
    InvalidInput,
    LinkMessage,
    OutboxWorker,
    Requester,
    Settings,
    build_services,
)
from magiclink.adapters.memory import (
    InMemoryNotifier,
    InMemoryOutbox,
    InMemoryUnitOfWork,
    ManualClock,
)
from magiclink.adapters.smtp import MailDeliveryError
from magiclink.ports import Notifier, OutboxState

START = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)


class FlakyNotifier(Notifier):
    """Fails the next `failures` sends (transient unless `permanent`), then delivers."""

    def __init__(self, failures: int = 0, *, permanent: bool = False) -> None:
        self.failures, self.permanent = failures, permanent
        self.sent: list[LinkMessage] = []

    def send(self, message: LinkMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise MailDeliveryError("Mail server replied 451", transient=not self.permanent)
        self.sent.append(message)


def _world(notifier: Notifier, max_attempts: int = 3):  # type: ignore[no-untyped-def]
    uow = InMemoryUnitOfWork()
    outbox = InMemoryOutbox(uow)
    clock = ManualClock(START - timedelta(days=1))
    booker = InMemoryNotifier()
    services = build_services(
        uow, notifier=booker, clock=clock, settings=Settings(mail_via_outbox=True), outbox=outbox
    )
    worker = OutboxWorker(
        services, notifier, outbox=outbox, max_attempts=max_attempts, rng=random.Random(1)
    )
    return services, outbox, clock, worker, booker


def test_book_stores_intent_not_token_and_worker_delivers_s11_2() -> None:
    notifier = FlakyNotifier()
    services, outbox, _, worker, booker = _world(notifier)
    outcome = services.bookings.book_session(7, "g@example.org", START)
    assert not outcome.link_sent and booker.sent == []
    assert services.guests.tokens_for_booking(outcome.booking.id) == []  # nothing minted yet
    [message] = outbox.list()
    assert (message.state, message.kind, message.guest_email) == (
        OutboxState.PENDING,
        "booking",
        "g@example.org",
    )
    report = worker.deliver_due()
    assert (report.delivered, report.retried, report.dead_lettered) == (1, 0, 0)
    [mail] = notifier.sent
    raw = mail.url.split("token=")[1]
    assert services.guests.verify_token(raw).token.booking_id == outcome.booking.id
    assert outbox.get(message.id).state is OutboxState.DELIVERED
    assert worker.deliver_due().delivered == 0  # exactly once


def test_failed_send_kills_its_link_and_retries_with_backoff_s11_2() -> None:
    notifier = FlakyNotifier(failures=1)
    services, outbox, clock, worker, _ = _world(notifier)
    booking = services.bookings.book_session(7, "g@example.org", START).booking
    assert worker.deliver_due().retried == 1
    [dead] = services.guests.tokens_for_booking(booking.id)
    assert dead.invalidation_reason is InvalidationReason.DELIVERY_FAILED
    [message] = outbox.list()
    assert message.state is OutboxState.PENDING and message.next_attempt_at > clock.now()
    assert worker.deliver_due().delivered == 0  # not due yet
    clock.advance(timedelta(hours=2))
    assert worker.deliver_due().delivered == 1
    live = [t for t in services.guests.tokens_for_booking(booking.id) if not t.invalidated]
    assert len(live) == 1


def test_dead_letter_after_last_attempt_logs_counts_audits_s11_2(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = FlakyNotifier(failures=99)
    services, outbox, clock, worker, _ = _world(notifier, max_attempts=3)
    booking = services.bookings.book_session(7, "g@example.org", START).booking
    reports = []
    with caplog.at_level(logging.ERROR, logger="magiclink"):
        for _ in range(3):
            reports.append(worker.deliver_due())
            clock.advance(timedelta(hours=2))
    assert [r.retried for r in reports] == [1, 1, 0] and reports[-1].dead_lettered == 1
    assert outbox.list()[0].state is OutboxState.DEAD
    assert any("outbox.dead_lettered" in r.getMessage() for r in caplog.records)
    assert any(
        e.action == "OUTBOX_DEAD_LETTER" for e in services.guests.audit_trail(booking_id=booking.id)
    )
    assert all(t.invalidated for t in services.guests.tokens_for_booking(booking.id))
    # retry ID revives it
    notifier.failures = 0
    assert outbox.retry(outbox.list()[0].id, now=clock.now())
    assert worker.deliver_due().delivered == 1


def test_permanent_refusal_dead_letters_at_once_s11_2() -> None:
    services, _outbox, _, worker, _ = _world(FlakyNotifier(failures=1, permanent=True))
    services.bookings.book_session(7, "g@example.org", START)
    assert worker.deliver_due().dead_lettered == 1


def test_reschedule_enqueues_and_stale_intent_is_skipped_s11_2() -> None:
    notifier = FlakyNotifier()
    services, _outbox, _, worker, _ = _world(notifier)
    booking = services.bookings.book_session(7, "g@example.org", START).booking
    services.bookings.reschedule_session(booking.id, START + timedelta(days=1), Requester.system())
    report = worker.deliver_due()
    assert (report.delivered, report.skipped) == (1, 1)  # the revision-0 intent is obsolete
    assert [m.kind for m in notifier.sent] == ["reschedule"]
    live = [t for t in services.guests.tokens_for_booking(booking.id) if not t.invalidated]
    assert len(live) == 1


def test_crashed_attempt_link_dies_before_the_next_one_s11_3() -> None:
    """A worker that died after minting: the re-claim kills that link first (§11.3)."""
    notifier = FlakyNotifier()
    services, outbox, clock, worker, _ = _world(notifier)
    booking = services.bookings.book_session(7, "g@example.org", START).booking
    [claimed] = outbox.claim_due(now=clock.now(), limit=1, lease=timedelta(minutes=5))
    services.guests.issue_booking_link(
        "g@example.org",
        booking.id,
        within=lambda tx, token, _b: outbox.record_link(tx, claimed.id, token.id),
    )  # ... and then the process died
    assert worker.deliver_due().delivered == 0  # leased
    clock.advance(timedelta(minutes=6))
    assert worker.deliver_due().delivered == 1
    tokens = services.guests.tokens_for_booking(booking.id)
    assert len(tokens) == 2 and sum(not t.invalidated for t in tokens) == 1


def test_outbox_setting_needs_an_outbox_s11_2() -> None:
    with pytest.raises(InvalidInput):
        build_services(
            InMemoryUnitOfWork(),
            notifier=InMemoryNotifier(),
            settings=Settings(mail_via_outbox=True),
        )


def test_without_outbox_behaviour_is_todays_s11_2() -> None:
    notifier = InMemoryNotifier()
    services = build_services(InMemoryUnitOfWork(), notifier=notifier)
    assert services.bookings.book_session(7, "g@example.org", START).link_sent
    assert len(notifier.sent) == 1
