"""No raw token at rest in the outbox (§11.2): the leak scan over every table, the database
file and the logs, after book, failed and successful deliveries and a reschedule."""

from __future__ import annotations

import email
import email.policy
import logging
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from magiclink import OutboxWorker, Requester, Settings, build_services
from magiclink.adapters.memory import InMemoryNotifier, ManualClock
from magiclink.adapters.smtp import SmtpNotifier
from magiclink.adapters.sqlalchemy import SqlAlchemyOutbox, SqlAlchemyUnitOfWork
from tests.databases import sqlite_engine  # noqa: F401
from tests.mail.conftest import Recorder
from tests.reliability.world import table_rows

START = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)


def test_outbox_table_file_and_logs_hold_no_raw_token_s11_2(
    sqlite_engine: Engine,  # noqa: F811
    smtp_server: tuple[Recorder, int],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="magiclink")
    recorder, port = smtp_server
    uow = SqlAlchemyUnitOfWork(sqlite_engine)
    box = SqlAlchemyOutbox(uow)
    clock = ManualClock(START - timedelta(days=1))
    services = build_services(
        uow,
        notifier=InMemoryNotifier(),
        clock=clock,
        settings=Settings(mail_via_outbox=True),
        outbox=box,
    )
    smtp = SmtpNotifier("127.0.0.1", port, sender="b@example.org", timeout=2.0)
    worker = OutboxWorker(services, smtp, outbox=box, rng=random.Random(3))
    bookings = [
        services.bookings.book_session(7, f"g{n}@example.org", START).booking for n in range(3)
    ]
    recorder.reply = "451 later"
    assert worker.deliver_due().retried == 3
    recorder.reply = None
    clock.advance(timedelta(hours=2))
    assert worker.deliver_due().delivered == 3
    services.bookings.reschedule_session(
        bookings[0].id, START + timedelta(days=1), Requester.system()
    )
    assert worker.deliver_due().delivered == 1
    bodies = [
        email.message_from_bytes(mail, policy=email.policy.default)
        .get_body(("plain",))
        .get_content()  # type: ignore[union-attr]
        for mail in recorder.messages
    ]
    raws = {m.encode() for body in bodies for m in re.findall(r"token=([0-9a-f]{64})", body)}
    assert len(raws) == 4
    stored = repr(table_rows(sqlite_engine))
    assert "magiclink_outbox" in stored
    sqlite_engine.dispose()
    files = b"".join(p.read_bytes() for p in tmp_path.glob("magiclink.db*"))
    logs = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)
    for raw in raws:
        assert raw.decode() not in stored
        assert raw not in files
        assert raw.decode() not in logs
