"""A worker process of the reliability test: delivers until nothing is due for a while."""

from __future__ import annotations

import random
import time
from datetime import timedelta

from sqlalchemy import create_engine

from magiclink import OutboxWorker, Settings, build_services
from magiclink.adapters.memory import InMemoryNotifier
from magiclink.adapters.smtp import SmtpNotifier
from magiclink.adapters.sqlalchemy import SqlAlchemyOutbox, SqlAlchemyUnitOfWork


def run(url: str, port: int, seed: int, idle_rounds: int = 20, lease_s: float = 300.0) -> None:
    engine = create_engine(url)
    uow = SqlAlchemyUnitOfWork(engine)
    box = SqlAlchemyOutbox(uow)
    services = build_services(
        uow, notifier=InMemoryNotifier(), settings=Settings(mail_via_outbox=True), outbox=box
    )
    worker = OutboxWorker(
        services,
        SmtpNotifier("127.0.0.1", port, sender="b@example.org", timeout=5.0),
        outbox=box,
        base_delay=timedelta(milliseconds=5),
        max_delay=timedelta(milliseconds=40),
        rng=random.Random(seed),
        lease=timedelta(seconds=lease_s),
    )
    idle = 0
    while idle < idle_rounds:  # bounded: stops by itself once nothing is due
        report = worker.deliver_due(limit=10)
        busy = report.delivered + report.retried + report.dead_lettered + report.skipped
        idle = 0 if busy else idle + 1
        if not busy:
            time.sleep(0.02)
    engine.dispose()
