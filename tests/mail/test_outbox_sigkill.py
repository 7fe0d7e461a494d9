"""§11.3: a worker SIGKILLed mid-delivery 10 times: nothing lost, and any duplicate mail's
earlier link is already dead."""

from __future__ import annotations

import asyncio
import email
import email.policy
import multiprocessing
import os
import re
import signal
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from magiclink import Settings, TokenExpiredOrUsed, build_services
from magiclink.adapters.memory import InMemoryNotifier
from magiclink.adapters.sqlalchemy import SqlAlchemyOutbox, SqlAlchemyUnitOfWork, create_schema
from magiclink.ports import OutboxState
from tests.databases import isolated_postgres_engine
from tests.mail import _worker_process
from tests.mail.conftest import Recorder, free_port

KILLS = 10


class Slow(Recorder):
    """Accepts each message after a pause, so that a worker can be killed inside the send."""

    def __init__(self) -> None:
        super().__init__()
        self.in_data = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.in_data += 1
        await asyncio.sleep(0.15)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.postgres
def test_sigkilled_worker_loses_nothing_and_duplicates_are_dead_s11_3() -> None:
    from aiosmtpd.controller import Controller

    recorder = Slow()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    context = multiprocessing.get_context("spawn")
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
            for n in range(30):
                services.bookings.book_session(1, f"k{n}@example.org", start)
            url = engine.url.render_as_string(hide_password=False)
            for kill in range(KILLS):
                seen = recorder.in_data
                process = context.Process(
                    target=_worker_process.run, args=(url, port, kill, 20, 0.5)
                )
                process.start()
                deadline = time.monotonic() + 30
                while recorder.in_data == seen and time.monotonic() < deadline:
                    time.sleep(0.005)
                time.sleep(0.02 * (kill % 4))  # inside DATA, or just after
                assert process.pid is not None
                os.kill(process.pid, signal.SIGKILL)
                process.join(timeout=10)
                assert process.exitcode == -signal.SIGKILL
            time.sleep(0.6)  # the killed claims' leases lapse
            final = context.Process(target=_worker_process.run, args=(url, port, 99, 20, 0.5))
            final.start()
            final.join(timeout=120)
            assert final.exitcode == 0
            messages = box.list()
            assert all(m.state in (OutboxState.DELIVERED, OutboxState.DEAD) for m in messages)
            by_booking: dict[int, list[str]] = defaultdict(list)
            for raw_mail in recorder.messages:
                body = email.message_from_bytes(raw_mail, policy=email.policy.default).get_body(
                    ("plain",)
                )
                [raw] = re.findall(r"token=([0-9a-f]{64})", body.get_content())  # type: ignore[union-attr]
                to = email.message_from_bytes(raw_mail, policy=email.policy.default)["To"]
                by_booking[hash(to)].append(raw)
            assert len(by_booking) == len([m for m in messages if m.state is OutboxState.DELIVERED])
            duplicates = 0
            for raws in by_booking.values():
                *earlier, last = raws
                duplicates += len(earlier)
                services.guests.verify_token(last)
                for raw in earlier:
                    with pytest.raises(TokenExpiredOrUsed):
                        services.guests.verify_token(raw)
            print(f"kills={KILLS} duplicates={duplicates} messages={len(messages)}")
    finally:
        controller.stop()
