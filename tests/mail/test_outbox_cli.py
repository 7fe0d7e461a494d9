"""`magiclink outbox deliver|status|retry` against a real SMTP server (§11.2, §11.3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from magiclink import Settings, build_services
from magiclink.adapters.memory import InMemoryNotifier
from magiclink.adapters.sqlalchemy import SqlAlchemyOutbox, SqlAlchemyUnitOfWork
from magiclink.cli import main
from tests.databases import sqlite_file_engine
from tests.mail.conftest import Recorder


def test_deliver_status_retry_s11_2(
    tmp_path: Path, smtp_server: tuple[Recorder, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder, port = smtp_server
    engine = sqlite_file_engine(tmp_path)
    from magiclink.adapters.sqlalchemy import create_schema

    create_schema(engine)
    uow = SqlAlchemyUnitOfWork(engine)
    box = SqlAlchemyOutbox(uow)
    services = build_services(
        uow, notifier=InMemoryNotifier(), settings=Settings(mail_via_outbox=True), outbox=box
    )
    start = datetime.now(UTC) + timedelta(days=2)
    services.bookings.book_session(7, "g@example.org", start)
    url = f"sqlite:///{tmp_path / 'magiclink.db'}"
    monkeypatch.setenv("MAGICLINK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAGICLINK_SMTP_PORT", str(port))
    monkeypatch.setenv("MAGICLINK_SMTP_SENDER", "bookings@example.org")
    runner = CliRunner()
    shown = runner.invoke(main, ["outbox", "status", "--json", "--database-url", url])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["counts"]["pending"] == 1
    done = runner.invoke(main, ["outbox", "deliver", "--batch", "10", "--database-url", url])
    assert done.exit_code == 0, done.output
    assert "delivered=1" in done.output and len(recorder.messages) == 1
    refused = runner.invoke(main, ["outbox", "retry", "1", "--database-url", url])
    assert refused.exit_code != 0  # delivered, not dead
    engine.dispose()
