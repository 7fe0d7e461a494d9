"""§9.2: every message goes to the normalized address, directly and through the outbox (§11.2)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from magiclink import OutboxWorker, Settings, build_services
from magiclink.adapters.memory import (
    InMemoryNotifier,
    InMemoryOutbox,
    InMemoryUnitOfWork,
    ManualClock,
)

START = datetime(2030, 3, 3, 14, 30, tzinfo=UTC)
TYPED = "  Jos\u00e9.Kim@M\u00fcnchen.DE "
NORMALIZED = "jos\u00e9.kim@m\u00fcnchen.de"


def test_s9_2_outbox_worker_mails_the_normalized_address() -> None:
    uow = InMemoryUnitOfWork()
    outbox = InMemoryOutbox(uow)
    booker, worker_notifier = InMemoryNotifier(), InMemoryNotifier()
    services = build_services(
        uow,
        notifier=booker,
        clock=ManualClock(START - timedelta(days=1)),
        settings=Settings(mail_via_outbox=True),
        outbox=outbox,
    )
    worker = OutboxWorker(services, worker_notifier, outbox=outbox, rng=random.Random(1))
    outcome = services.bookings.book_session(7, TYPED, START)
    assert outcome.booking.guest_email == NORMALIZED
    assert worker.deliver_due().delivered == 1
    assert [m.to for m in worker_notifier.sent] == [NORMALIZED]
    assert booker.sent == []


def test_s9_2_direct_mail_and_reschedule_go_to_the_normalized_address() -> None:
    uow = InMemoryUnitOfWork()
    notifier = InMemoryNotifier()
    services = build_services(
        uow, notifier=notifier, clock=ManualClock(START - timedelta(days=1)), settings=Settings()
    )
    outcome = services.bookings.book_session(7, TYPED, START)
    issued = services.guests.request_inbox_link(
        TYPED.swapcase().replace("\u00c9", "\u00e9").replace("\u00dc", "\u00fc")
    )
    assert issued.email == NORMALIZED
    assert [m.to for m in notifier.sent] == [NORMALIZED]
    assert outcome.booking.guest_email == NORMALIZED
