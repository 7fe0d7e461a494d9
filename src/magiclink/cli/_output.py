"""The commands' output: JSON on stdout, rich tables, UTC times and token states."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from magiclink.domain._records import AuditEntry, Guest, MagicLinkToken

__all__ = [
    "audit_json",
    "audit_table",
    "emit_json",
    "format_when",
    "output_console",
    "report",
    "report_guest",
    "token_json",
    "token_state",
]


def emit_json(data: object) -> None:
    """Print `data` as indented JSON with sorted keys (datetimes and the like as text)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def report(as_json: bool, data: object, *lines: str) -> None:
    """A command's result: `data` as JSON (`--json`), else `lines` for people."""
    if as_json:
        emit_json(data)
    else:
        for line in lines:
            click.echo(line)


def report_guest(as_json: bool, guest: Guest, *, blocked: bool) -> None:
    """What `guest block` and `guest unblock` print: the guest and its new state."""
    verb = "Blocked" if blocked else "Unblocked"
    report(
        as_json,
        {"guest_id": guest.id, "email": guest.normalized_email, "blocked": blocked},
        f"{verb} {guest.normalized_email} (guest {guest.id}).",
    )


def output_console() -> Console:
    """The console tables print to: 160 columns wide when the output is not a terminal."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 160  # piped or captured output: keep table rows on one line
    return console


def format_when(value: datetime | None) -> str:
    """A time as `YYYY-MM-DD HH:MM:SS` in UTC, or `-` for none."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def token_state(token: MagicLinkToken, now: datetime) -> str:
    """`live`, `used`, `expired` or `invalidated (<reason>)` at `now`."""
    if token.invalidated:
        return f"invalidated ({token.invalidation_reason})"
    if token.used_at is not None:
        return "used"
    return "expired" if token.expires_at <= now else "live"


def token_json(token: MagicLinkToken, now: datetime) -> dict[str, Any]:
    """A token as the JSON object the commands print (its state at `now` included)."""
    return {
        "id": token.id,
        "guest_id": token.guest_id,
        "booking_id": token.booking_id,
        "booking_revision": token.booking_revision,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat(),
        "used_at": None if token.used_at is None else token.used_at.isoformat(),
        "invalidated": token.invalidated,
        "invalidation_reason": token.invalidation_reason,
        "state": token_state(token, now),
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as the JSON object the commands print."""
    return {
        "id": entry.id,
        "created_at": entry.created_at.isoformat(),
        "guest_id": entry.guest_id,
        "action": entry.action,
        "resource_id": entry.resource_id,
        "success": entry.success,
        "metadata": dict(entry.metadata),
    }


def audit_table(entries: Sequence[AuditEntry], title: str) -> Table:
    """The audit trail as a rich table, newest first."""
    table = Table(title=title, title_justify="left")
    for column in ("when (UTC)", "guest", "action", "ok", "details"):
        table.add_column(column)
    for entry in entries:
        details = ", ".join(f"{k}={v}" for k, v in sorted(entry.metadata.items()))
        table.add_row(
            format_when(entry.created_at),
            "-" if entry.guest_id is None else str(entry.guest_id),
            entry.action,
            "yes" if entry.success else "no",
            details,
        )
    return table
