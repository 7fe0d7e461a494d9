"""`magiclink outbox …`: the operator's commands for the mail outbox (§11.2).

`deliver [--loop] [--batch N]` runs the worker over SMTP, configured by the environment:
`MAGICLINK_SMTP_HOST` (required), `MAGICLINK_SMTP_PORT` (25), `MAGICLINK_SMTP_SENDER`
(required), `MAGICLINK_SMTP_STARTTLS` / `MAGICLINK_SMTP_TLS` ("1" to enable),
`MAGICLINK_SMTP_USERNAME`, `MAGICLINK_SMTP_PASSWORD`, `MAGICLINK_LINK_BASE_URL`.
`status` prints counts by state and the oldest undelivered message's age; `retry ID` makes a
dead or skipped message pending again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click

from magiclink._bootstrap import Services, build_services
from magiclink._outbox import OutboxWorker
from magiclink.adapters.memory import InMemoryNotifier
from magiclink.adapters.smtp import SmtpNotifier
from magiclink.adapters.sqlalchemy import SqlAlchemyOutbox, SqlAlchemyUnitOfWork
from magiclink.cli._runtime import DEFAULT_URL, CliFailure, json_option, runtime
from magiclink.domain._errors import InvalidInput
from magiclink.domain._records import Settings
from magiclink.ports._clock import SystemClock

database_url = click.option(
    "--database-url",
    envvar="MAGICLINK_DATABASE_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="SQLAlchemy URL of the database (env: MAGICLINK_DATABASE_URL).",
)


def outbox_settings() -> Settings:
    """The settings of the worker; a bad `MAGICLINK_LINK_BASE_URL` (§9.6) is a usage error."""
    base = os.environ.get("MAGICLINK_LINK_BASE_URL")
    try:
        if base:
            return Settings(mail_via_outbox=True, link_base_url=base)
        return Settings(mail_via_outbox=True)
    except InvalidInput as error:
        raise click.UsageError(f"MAGICLINK_LINK_BASE_URL: {error.message}") from error


@contextmanager
def _world(url: str) -> Iterator[tuple[Services, SqlAlchemyOutbox]]:
    settings = outbox_settings()
    with runtime(url) as rt:
        rt.require_schema()
        uow = SqlAlchemyUnitOfWork(rt.engine)
        box = SqlAlchemyOutbox(uow)
        yield build_services(uow, notifier=InMemoryNotifier(), settings=settings, outbox=box), box


def smtp_from_environment() -> SmtpNotifier:
    """The SMTP notifier the environment describes (see the module docstring)."""
    host, sender = os.environ.get("MAGICLINK_SMTP_HOST"), os.environ.get("MAGICLINK_SMTP_SENDER")
    if not host or not sender:
        raise click.UsageError("set MAGICLINK_SMTP_HOST and MAGICLINK_SMTP_SENDER")
    port = os.environ.get("MAGICLINK_SMTP_PORT", "25")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise click.UsageError(f"MAGICLINK_SMTP_PORT: {port!r} is not a port number")
    return SmtpNotifier(
        host,
        int(port),
        sender=sender,
        starttls=os.environ.get("MAGICLINK_SMTP_STARTTLS") == "1",
        use_tls=os.environ.get("MAGICLINK_SMTP_TLS") == "1",
        username=os.environ.get("MAGICLINK_SMTP_USERNAME"),
        password=os.environ.get("MAGICLINK_SMTP_PASSWORD"),
    )


@click.group()
def outbox() -> None:
    """Deliver and inspect the mail outbox."""


@outbox.command("deliver")
@database_url
@click.option("--loop", is_flag=True, help="Keep delivering; sleep --interval between batches.")
@click.option("--batch", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.0))
def deliver(database_url: str, loop: bool, batch: int, interval: float) -> None:
    """Deliver due messages (once, or forever with --loop)."""
    with _world(database_url) as (services, box):
        worker = OutboxWorker(services, smtp_from_environment(), outbox=box)
        while True:
            report = worker.deliver_due(limit=batch)
            click.echo(
                f"delivered={report.delivered} retried={report.retried} "
                f"dead_lettered={report.dead_lettered} skipped={report.skipped}"
            )
            if not loop:
                return
            if report.delivered + report.retried + report.dead_lettered + report.skipped < batch:
                time.sleep(interval)


@outbox.command("status")
@database_url
@json_option
def status(database_url: str, as_json: bool) -> None:
    """Counts by state and the age of the oldest undelivered message."""
    with _world(database_url) as (_, box):
        found = box.status()
    age = None
    if found.oldest_pending_at is not None:
        age = round((SystemClock().now() - found.oldest_pending_at).total_seconds(), 1)
    if as_json:
        click.echo(json.dumps({"counts": dict(found.counts), "oldest_pending_age_seconds": age}))
        return
    for state, count in found.counts.items():
        click.echo(f"{state}: {count}")
    click.echo(f"oldest pending: {'-' if age is None else f'{age} s'}")


@outbox.command("retry")
@database_url
@click.argument("message_id", type=click.IntRange(1, 2**63 - 1))
def retry(database_url: str, message_id: int) -> None:
    """Make a dead (or skipped) message pending again."""
    with _world(database_url) as (_, box):
        if not box.retry(message_id, now=SystemClock().now()):
            raise CliFailure(f"error: message {message_id} is not dead or skipped")
    click.echo(f"message {message_id} is pending again")


__all__ = ["outbox", "outbox_settings", "smtp_from_environment"]
