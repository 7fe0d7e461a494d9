"""The `magiclink` command group and its commands."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import click
from rich.progress import Progress
from rich.table import Table

from magiclink.adapters.sqlalchemy import current_revision, upgrade_to_head
from magiclink.cli._demo import run_demo
from magiclink.cli._output import (
    audit_json,
    audit_table,
    emit_json,
    format_when,
    output_console,
    report,
    report_guest,
    token_json,
    token_state,
)
from magiclink.cli._runtime import (
    _JSON_ERRORS,
    DEMO_URL,
    CliFailure,
    DurationType,
    JsonErrorsGroup,
    booking_type,
    database_command,
    raw_token_of,
    require_booking,
    runtime,
    unusable,
)
from magiclink.domain._enums import InvalidationReason
from magiclink.domain._errors import MagicLinkError

__all__ = ["main"]


@click.group(cls=JsonErrorsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="magiclink")
def main() -> None:
    """Operate magiclink: links, guests, audit trail, purge, stats and a demo."""
    _JSON_ERRORS["on"] = False


@main.group()
def db() -> None:
    """Schema migrations (Alembic)."""


@db.command("upgrade")
@database_command
def db_upgrade(database_url: str, as_json: bool) -> None:
    """Create or upgrade the magiclink tables to the newest revision (safe to run from several
    instances at once: a database lock serialises them)."""
    with runtime(database_url, create=True) as rt:
        try:
            upgrade_to_head(rt.engine)
            revision = current_revision(rt.engine)
        except MagicLinkError as error:
            raise unusable(error, "cannot upgrade") from error
        report(as_json, {"revision": revision}, f"Database at revision {revision}.")


@db.command("current")
@database_command
def db_current(database_url: str, as_json: bool) -> None:
    """Print the schema revision of the database (or `none`)."""
    with runtime(database_url) as rt:
        try:
            revision = current_revision(rt.engine)
        except MagicLinkError as error:
            raise unusable(error) from error
        report(as_json, {"revision": revision}, revision or "none")


@main.group()
def link() -> None:
    """Issue, verify, revoke and list magic links."""


@link.command("issue")
@click.argument("email")
@click.option("--booking", "booking_id", type=booking_type, help="Bind to this booking.")
@database_command
def link_issue(email: str, booking_id: int | None, database_url: str, as_json: bool) -> None:
    """Issue a link for EMAIL as if the guest had asked for it (rate limits apply)."""
    with runtime(database_url) as rt:
        issued = rt.guests.request_inbox_link(email, booking_id)
        url = rt.guests.settings.link_url(issued.raw)
        data = {
            "token_id": issued.token_id,
            "guest_id": issued.guest_id,
            "booking_id": issued.booking_id,
            "expires_at": issued.expires_at.isoformat(),
            "url": url,
        }
        when = format_when(issued.expires_at)
        report(as_json, data, f"Issued token {issued.token_id}, expires {when} UTC", url)


@link.command("verify")
@click.argument("token")
@database_command
def link_verify(token: str, database_url: str, as_json: bool) -> None:
    """Check TOKEN (the raw token of a link, or the whole pasted link) without using it up."""
    with runtime(database_url) as rt:
        verified = rt.guests.verify_token(raw_token_of(token))
        now = rt.guests.clock.now()
        email, token_ = verified.guest.normalized_email, verified.token
        report(
            as_json,
            {"valid": True, "guest": email} | token_json(token_, now),
            f"Valid: token {token_.id} of {email} (booking {token_.booking_id or '-'}),"
            f" expires {format_when(token_.expires_at)} UTC",
        )


@link.command("revoke")
@click.option("--booking", "booking_id", type=booking_type, required=True)
@click.option(
    "--reason",
    type=click.Choice([r.value for r in InvalidationReason]),
    default=InvalidationReason.MANUAL_REVOCATION.value,
    show_default=True,
)
@database_command
def link_revoke(booking_id: int, reason: str, database_url: str, as_json: bool) -> None:
    """Invalidate every link of a booking (audited)."""
    with runtime(database_url) as rt:
        require_booking(rt, booking_id)
        count = rt.guests.invalidate_tokens_by_booking_id(
            booking_id, reason, metadata={"event": "cli_revoke"}
        )
        report(
            as_json,
            {"booking_id": booking_id, "reason": reason, "invalidated": count},
            f"Invalidated {count} token(s) of booking {booking_id} ({reason}).",
        )


@link.command("list")
@click.option("--booking", "booking_id", type=booking_type, required=True)
@database_command
def link_list(booking_id: int, database_url: str, as_json: bool) -> None:
    """List the links of a booking, oldest first (never the raw tokens: they are not stored)."""
    with runtime(database_url) as rt:
        require_booking(rt, booking_id)
        tokens = rt.guests.tokens_for_booking(booking_id)
        now = rt.guests.clock.now()
        if as_json:
            emit_json([token_json(t, now) for t in tokens])
            return
        table = Table(title=f"Links of booking {booking_id}", title_justify="left")
        for column in ("id", "guest", "rev", "created (UTC)", "expires (UTC)", "used", "state"):
            table.add_column(column)
        for t in tokens:
            table.add_row(
                str(t.id),
                str(t.guest_id),
                "-" if t.booking_revision is None else str(t.booking_revision),
                format_when(t.created_at),
                format_when(t.expires_at),
                "-" if t.invalidated else format_when(t.used_at),
                token_state(t, now),
            )
        output_console().print(table)


@main.group()
def guest() -> None:
    """Block or unblock a guest's address."""


@guest.command("block")
@click.argument("email")
@database_command
def guest_block(email: str, database_url: str, as_json: bool) -> None:
    """Block EMAIL: it can neither get nor use links until unblocked."""
    with runtime(database_url) as rt:
        report_guest(as_json, rt.guests.block_guest(email), blocked=True)


@guest.command("unblock")
@click.argument("email")
@database_command
def guest_unblock(email: str, database_url: str, as_json: bool) -> None:
    """Lift the block on EMAIL."""
    with runtime(database_url) as rt:
        unblocked = rt.guests.unblock_guest(email)
        if unblocked is None:
            raise CliFailure(f"error: no guest with e-mail {email.strip().lower()}")
        report_guest(as_json, unblocked, blocked=False)


@main.command("audit")
@click.option("--booking", "booking_id", type=booking_type)
@click.option("--guest", "guest_email")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@database_command
def audit(
    booking_id: int | None, guest_email: str | None, limit: int, database_url: str, as_json: bool
) -> None:
    """The audit trail of a booking or of a guest, newest first."""
    if (booking_id is None) == (guest_email is None):
        raise click.UsageError("give exactly one of --booking ID or --guest EMAIL")
    with runtime(database_url) as rt:
        if guest_email is not None:
            found = rt.guests.get_guest(guest_email)
            if found is None:
                raise CliFailure(f"error: no guest with e-mail {guest_email.strip().lower()}")
            entries = rt.guests.audit_trail(guest_id=found.id, limit=limit)
            title = f"Audit trail of {found.normalized_email} (guest {found.id})"
        else:
            entries = rt.guests.audit_trail(booking_id=booking_id, limit=limit)
            title = f"Audit trail of booking {booking_id}"
        if as_json:
            emit_json([audit_json(e) for e in entries])
        else:
            output_console().print(audit_table(entries, title))


@main.command("purge")
@click.option(
    "--expired-for",
    type=DurationType(),
    required=True,
    help="Delete tokens expired for longer than this: a number and a unit, s m h d w"
    " (seconds, minutes, hours, days, weeks), combinable: 7d, 12h, 1d12h, 90m.",
)
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=1_000, show_default=True)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@database_command
def purge(
    expired_for: timedelta, batch_size: int, dry_run: bool, database_url: str, as_json: bool
) -> None:
    """Delete long-expired tokens in batches (one DELETE per batch); audit entries are kept."""
    with runtime(database_url) as rt:
        total = rt.guests.count_expired_tokens(expired_for)
        if dry_run:
            deleted = 0
        else:
            console = output_console()
            with Progress(console=console, disable=not console.is_terminal) as progress:
                task = progress.add_task("Purging expired tokens", total=total)
                deleted = rt.guests.purge_expired_tokens(
                    expired_for,
                    batch_size=batch_size,
                    on_batch=lambda n: progress.advance(task, n),
                )
        done = f"Would delete {total}" if dry_run else f"Deleted {deleted}"
        report(
            as_json,
            {"matched": total, "deleted": deleted, "dry_run": dry_run},
            f"{done} token(s) expired for more than {expired_for}.",
        )


@main.command("stats")
@database_command
def stats(database_url: str, as_json: bool) -> None:
    """Live, expired, used and invalidated token counts, and invalidations by reason."""
    with runtime(database_url) as rt:
        counts = rt.guests.token_stats()
        data = {
            "live": counts.live,
            "expired": counts.expired,
            "used": counts.used,
            "invalidated": counts.invalidated,
            "invalidated_by_reason": dict(sorted(counts.invalidated_by_reason.items())),
        }
        if as_json:
            emit_json(data)
            return
        table = Table(title="Tokens", title_justify="left")
        table.add_column("state")
        table.add_column("count", justify="right")
        for key in ("live", "expired", "used", "invalidated"):
            table.add_row(key, str(data[key]))
        for reason, count in sorted(counts.invalidated_by_reason.items()):
            table.add_row(f"  invalidated: {reason}", str(count))
        output_console().print(table)


@main.command("demo")
def demo() -> None:
    """Walk through a booking's whole lifecycle on an embedded SQLite file, narrated.

    Always `./magiclink-demo.db`, whatever `MAGICLINK_DATABASE_URL` says; two demos started
    in one folder take turns (a lock file).
    """
    with _demo_lock():
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"magiclink-demo.db{suffix}").unlink(missing_ok=True)
        with runtime(DEMO_URL, create=True) as rt:
            upgrade_to_head(rt.engine)
            run_demo(rt, output_console())


@contextmanager
def _demo_lock() -> Iterator[None]:
    with open("magiclink-demo.db.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
