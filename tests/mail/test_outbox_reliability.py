"""§11.3 reliability: 500 bookings, an SMTP server failing a third of the time, 3 worker
processes on PostgreSQL, then the server healthy: every message delivered exactly once or
dead-lettered, none lost, at most one live link per booking."""

from __future__ import annotations

import email
import email.policy
import multiprocessing
import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from magiclink import Settings, build_services
from magiclink.adapters.memory import InMemoryNotifier
from magiclink.adapters.sqlalchemy import SqlAlchemyOutbox, SqlAlchemyUnitOfWork, create_schema
from magiclink.ports import OutboxState
from tests.databases import isolated_postgres_engine
from tests.mail import _worker_process
from tests.mail.conftest import Recorder

BOOKINGS = 500


class Flaky(Recorder):
    """Refuses DATA with 451 a third of the time while `failing`."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = True
        self.rng = random.Random(18)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.failing and self.rng.random() < 1 / 3:
            return "451 try again later"
        return await super().handle_DATA(server, session, envelope)


def _workers(url: str, port: int, seed: int) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_process.run, args=(url, port, seed + n)) for n in range(3)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0


@pytest.mark.postgres
def test_500_bookings_three_workers_flaky_server_s11_3() -> None:
    from aiosmtpd.controller import Controller

    from tests.mail.conftest import free_port

    recorder = Flaky()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with isolated_postgres_engine() as engine:
            create_schema(engine)
            uow = SqlAlchemyUnitOfWork(engine)
            box = SqlAlchemyOutbox(uow)
            services = build_services(
                uow,
                notifier=InMemoryNotifier(),
                settings=Settings(mail_via_outbox=True),
                outbox=box,
            )
            start = datetime.now(UTC) + timedelta(days=3)
            bookings = [
                services.bookings.book_session(1, f"g{n}@example.org", start).booking
                for n in range(BOOKINGS)
            ]
            url = engine.url.render_as_string(hide_password=False)
            _workers(url, port, 100)
            recorder.failing = False
            _workers(url, port, 200)
            messages = box.list(limit=10 * BOOKINGS)
            states = Counter(m.state for m in messages)
            assert len(messages) == BOOKINGS
            assert states[OutboxState.DELIVERED] + states[OutboxState.DEAD] == BOOKINGS  # none lost
            received: Counter[int] = Counter()
            for raw_mail in recorder.messages:
                body = email.message_from_bytes(raw_mail, policy=email.policy.default).get_body(
                    ("plain",)
                )
                [raw] = re.findall(r"token=([0-9a-f]{64})", body.get_content())  # type: ignore[union-attr]
                received[services.guests.verify_token(raw).token.booking_id or 0] += 1
            delivered = {m.booking_id for m in messages if m.state is OutboxState.DELIVERED}
            assert set(received) == delivered and set(received.values()) == {1}  # exactly once
            for booking in bookings:
                live = [
                    t for t in services.guests.tokens_for_booking(booking.id) if not t.invalidated
                ]
                assert len(live) == (1 if booking.id in delivered else 0)
            print(f"states={dict(states)} attempts={sum(m.attempts for m in messages)}")
    finally:
        controller.stop()
