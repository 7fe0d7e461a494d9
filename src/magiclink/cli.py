"""The `magiclink` operator command line (extra `magiclink[cli]`).

The composition root for operators: it builds the engine, the unit of work and the services
from `--database-url` (else `MAGICLINK_DATABASE_URL`, else `sqlite:///magiclink.db`).

Exit codes: 0 success; 1 when the domain refuses (refused token, blocked guest, unknown
booking) or the database cannot be used, with a one-line message and no traceback; 2 on
usage errors (click's own).
"""

from __future__ import annotations

import fcntl
import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

try:
    import click
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table
    from sqlalchemy import Engine, create_engine, make_url
    from sqlalchemy.exc import SQLAlchemyError
except ImportError as missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"The magiclink command line needs its extra: pip install 'magiclink[cli]' ({missing})"
    ) from missing

from magiclink.adapters.memory import InMemoryMetrics, InMemoryNotifier
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, current_revision, upgrade_to_head
from magiclink.adapters.sqlalchemy.migrate import missing_from_head, revision_shapes
from magiclink.domain.booking_service import BookingService
from magiclink.domain.enums import InvalidationReason
from magiclink.domain.errors import MagicLinkError, StorageError
from magiclink.domain.guest_service import GuestService
from magiclink.domain.quality import QualityRepository
from magiclink.domain.rating_service import RatingService
from magiclink.domain.records import AuditEntry, MagicLinkToken, Requester
from magiclink.ports.metrics import MetricNames

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_URL: Final = "sqlite:///magiclink.db"
DEMO_URL: Final = "sqlite:///magiclink-demo.db"
_DURATION = re.compile(r"(\d+)([wdhms])")
_UNITS: Final = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


MAX_ID: Final = 2**63 - 1
_JSON_ERRORS = {"on": False}


class CliFailure(click.ClickException):
    """A one-line refusal or failure: exit code 1, no traceback."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        """Print the message as it is (click would prefix it with `Error: `), or as one JSON
        object on stderr when the command was given `--json`."""
        if _JSON_ERRORS["on"]:
            message = self.message.removeprefix("error: ")
            click.echo(json.dumps({"error": message, "exit_code": self.exit_code}), err=True)
        else:
            click.echo(self.message, err=True)


def _json_errors(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    _JSON_ERRORS["on"] = bool(value)
    return bool(value)


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `1d12h`, `90m`, `30s`, `2w` → timedelta; anything else → ValueError.

    Units: `s` seconds, `m` minutes, `h` hours, `d` days, `w` weeks.
    """
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"{text!r} is not a duration like 7d, 12h or 1d12h")
    duration = timedelta(**{_UNITS[u]: 0 for u in _UNITS})
    try:
        for number, unit in parts:
            duration += timedelta(**{_UNITS[unit]: int(number)})
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None
    if duration <= timedelta(0):
        raise ValueError("the duration must be positive")
    return duration


class DurationType(click.ParamType[timedelta]):
    """A click parameter for `parse_duration`."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        """Parse the option's text, or fail as a usage error (exit 2)."""
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


def _one_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _cause(error: BaseException) -> str:
    cause = error.__cause__ or error
    if "file is not a database" in str(cause):
        return "the file is not a SQLite database (corrupt or another format)"
    return _one_line(cause)


def open_engine(url: str, *, create: bool) -> Engine:
    """The engine for `url`; a SQLite file must exist unless `create` (read-only commands never
    create a database), and its directory must exist. Any bad URL is a one-line failure."""
    if url.startswith("postgres://"):
        raise CliFailure(
            "error: invalid database URL: use postgresql+psycopg://... instead of postgres://..."
        )
    try:
        parsed = make_url(url)
        database = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if not path.parent.is_dir():
                raise CliFailure(f"error: no such directory: {path.parent}")
            if not create and not path.exists():
                raise CliFailure(
                    f"error: no database file at {path}; run `magiclink db upgrade` to create it"
                )
        return create_engine(parsed)
    except CliFailure:
        raise
    except Exception as error:
        raise CliFailure(f"error: invalid database URL: {_one_line(error)}") from error


class Runtime:
    """What a command needs, built from the database URL on first use."""

    def __init__(self, url: str, *, create: bool = False) -> None:
        self.url = url
        self.create = create
        self._engine: Engine | None = None
        self.metrics = InMemoryMetrics()
        self.notifier = InMemoryNotifier()

    @property
    def engine(self) -> Engine:
        """The engine for the URL, created on first use (a bad URL is a one-line failure)."""
        if self._engine is None:
            self._engine = open_engine(self.url, create=self.create)
        return self._engine

    def require_schema(self) -> None:
        """Fail with a hint when the database is unreachable or not at the head revision."""
        head = list(revision_shapes())[-1]
        try:
            revision = current_revision(self.engine)
            missing = missing_from_head(self.engine) if revision is None else []
        except MagicLinkError as error:
            raise CliFailure(f"error: cannot reach the database: {_cause(error)}") from error
        if revision is None and len(missing) == len(revision_shapes()[head]):
            raise CliFailure(
                "error: this database has no magiclink tables; run `magiclink db upgrade` first"
            )
        if revision is None and missing:
            raise CliFailure(f"error: this database lacks {missing[0]}; run `magiclink db upgrade`")
        if revision is not None and revision != head:
            raise CliFailure(
                f"error: this database is at revision {revision}; run `magiclink db upgrade`"
            )

    @functools.cached_property
    def uow(self) -> SqlAlchemyUnitOfWork:
        """The unit of work, once the database is known to hold the magiclink tables."""
        self.require_schema()
        return SqlAlchemyUnitOfWork(self.engine)

    @functools.cached_property
    def guests(self) -> GuestService:
        """The guest service every command works through, recording to `metrics`."""
        return GuestService(self.uow, metrics=self.metrics)

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        if self._engine is not None:
            self._engine.dispose()


@contextmanager
def runtime(url: str, *, create: bool = False) -> Iterator[Runtime]:
    """A `Runtime` whose engine is disposed of at the end; every failure becomes exit 1."""
    rt = Runtime(url, create=create)
    try:
        yield rt
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except StorageError as error:
        raise CliFailure(f"error: {error.message}: {_cause(error)}") from error
    except MagicLinkError as error:
        raise CliFailure(f"error: {error.message}") from error
    except SQLAlchemyError as error:
        raise CliFailure(f"error: database failure: {_cause(error)}") from error
    except Exception as error:  # a driver's own error (bad URL option...): still one line
        raise CliFailure(f"error: {type(error).__name__}: {_one_line(error)}") from error
    finally:
        rt.dispose()


def database_option(default: str = DEFAULT_URL) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The `--database-url` option every command takes."""
    return click.option(
        "--database-url",
        envvar="MAGICLINK_DATABASE_URL",
        default=default,
        show_default=True,
        help="SQLAlchemy URL of the database (env: MAGICLINK_DATABASE_URL).",
    )


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    is_eager=True,
    callback=_json_errors,
    help="Print JSON instead of text (errors: one JSON object on stderr).",
)
booking_type = click.IntRange(min=1, max=MAX_ID)


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 160  # piped or captured output: keep table rows on one line
    return console


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _token_state(token: MagicLinkToken, now: datetime) -> str:
    if token.invalidated:
        return f"invalidated ({token.invalidation_reason})"
    if token.used_at is not None:
        return "used"
    return "expired" if token.expires_at <= now else "live"


def _token_json(token: MagicLinkToken, now: datetime) -> dict[str, Any]:
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
        "state": _token_state(token, now),
    }


def _audit_json(entry: AuditEntry) -> dict[str, Any]:
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
            _when(entry.created_at),
            "-" if entry.guest_id is None else str(entry.guest_id),
            entry.action,
            "yes" if entry.success else "no",
            details,
        )
    return table


# --------------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="magiclink")
def main() -> None:
    """Operate magiclink: links, guests, audit trail, purge, stats and a demo."""
    _JSON_ERRORS["on"] = False


@main.group()
def db() -> None:
    """Schema migrations (Alembic)."""


@db.command("upgrade")
@database_option()
@json_option
def db_upgrade(database_url: str, as_json: bool) -> None:
    """Create or upgrade the magiclink tables to the newest revision (safe to run from several
    instances at once: a database lock serialises them)."""
    with runtime(database_url, create=True) as rt:
        try:
            upgrade_to_head(rt.engine)
            revision = current_revision(rt.engine)
        except MagicLinkError as error:
            raise CliFailure(f"error: cannot upgrade: {_cause(error)}") from error
        if as_json:
            _emit_json({"revision": revision})
        else:
            click.echo(f"Database at revision {revision}.")


@db.command("current")
@database_option()
@json_option
def db_current(database_url: str, as_json: bool) -> None:
    """Print the schema revision of the database (or `none`)."""
    with runtime(database_url) as rt:
        try:
            revision = current_revision(rt.engine)
        except MagicLinkError as error:
            raise CliFailure(f"error: cannot reach the database: {_cause(error)}") from error
        if as_json:
            _emit_json({"revision": revision})
        else:
            click.echo(revision or "none")


@main.group()
def link() -> None:
    """Issue, verify, revoke and list magic links."""


@link.command("issue")
@click.argument("email")
@click.option("--booking", "booking_id", type=booking_type, help="Bind to this booking.")
@database_option()
@json_option
def link_issue(email: str, booking_id: int | None, database_url: str, as_json: bool) -> None:
    """Issue a link for EMAIL as if the guest had asked for it (rate limits apply)."""
    with runtime(database_url) as rt:
        issued = rt.guests.request_inbox_link(email, booking_id)
        url = rt.guests.settings.link_url(issued.raw)
        if as_json:
            _emit_json(
                {
                    "token_id": issued.token_id,
                    "guest_id": issued.guest_id,
                    "booking_id": issued.booking_id,
                    "expires_at": issued.expires_at.isoformat(),
                    "url": url,
                }
            )
        else:
            click.echo(f"Issued token {issued.token_id}, expires {_when(issued.expires_at)} UTC")
            click.echo(url)


@link.command("verify")
@click.argument("token")
@database_option()
@json_option
def link_verify(token: str, database_url: str, as_json: bool) -> None:
    """Check TOKEN (the raw token of a link, or the whole pasted link) without using it up."""
    with runtime(database_url) as rt:
        verified = rt.guests.verify_token(raw_token_of(token))
        now = rt.guests.clock.now()
        if as_json:
            _emit_json(
                {"valid": True, "guest": verified.guest.normalized_email}
                | _token_json(verified.token, now)
            )
        else:
            click.echo(
                f"Valid: token {verified.token.id} of {verified.guest.normalized_email}"
                f" (booking {verified.token.booking_id or '-'}),"
                f" expires {_when(verified.token.expires_at)} UTC"
            )


@link.command("revoke")
@click.option("--booking", "booking_id", type=booking_type, required=True)
@click.option(
    "--reason",
    type=click.Choice([r.value for r in InvalidationReason]),
    default=InvalidationReason.MANUAL_REVOCATION.value,
    show_default=True,
)
@database_option()
@json_option
def link_revoke(booking_id: int, reason: str, database_url: str, as_json: bool) -> None:
    """Invalidate every link of a booking (audited)."""
    with runtime(database_url) as rt:
        require_booking(rt, booking_id)
        count = rt.guests.invalidate_tokens_by_booking_id(
            booking_id, reason, metadata={"event": "cli_revoke"}
        )
        if as_json:
            _emit_json({"booking_id": booking_id, "reason": reason, "invalidated": count})
        else:
            click.echo(f"Invalidated {count} token(s) of booking {booking_id} ({reason}).")


@link.command("list")
@click.option("--booking", "booking_id", type=booking_type, required=True)
@database_option()
@json_option
def link_list(booking_id: int, database_url: str, as_json: bool) -> None:
    """List the links of a booking, oldest first (never the raw tokens: they are not stored)."""
    with runtime(database_url) as rt:
        require_booking(rt, booking_id)
        tokens = rt.guests.tokens_for_booking(booking_id)
        now = rt.guests.clock.now()
        if as_json:
            _emit_json([_token_json(t, now) for t in tokens])
            return
        table = Table(title=f"Links of booking {booking_id}", title_justify="left")
        for column in ("id", "guest", "rev", "created (UTC)", "expires (UTC)", "used", "state"):
            table.add_column(column)
        for t in tokens:
            table.add_row(
                str(t.id),
                str(t.guest_id),
                "-" if t.booking_revision is None else str(t.booking_revision),
                _when(t.created_at),
                _when(t.expires_at),
                "-" if t.invalidated else _when(t.used_at),
                _token_state(t, now),
            )
        _console().print(table)


@main.group()
def guest() -> None:
    """Block or unblock a guest's address."""


@guest.command("block")
@click.argument("email")
@database_option()
@json_option
def guest_block(email: str, database_url: str, as_json: bool) -> None:
    """Block EMAIL: it can neither get nor use links until unblocked."""
    with runtime(database_url) as rt:
        blocked = rt.guests.block_guest(email)
        if as_json:
            _emit_json({"guest_id": blocked.id, "email": blocked.normalized_email, "blocked": True})
        else:
            click.echo(f"Blocked {blocked.normalized_email} (guest {blocked.id}).")


@guest.command("unblock")
@click.argument("email")
@database_option()
@json_option
def guest_unblock(email: str, database_url: str, as_json: bool) -> None:
    """Lift the block on EMAIL."""
    with runtime(database_url) as rt:
        unblocked = rt.guests.unblock_guest(email)
        if unblocked is None:
            raise CliFailure(f"error: no guest with e-mail {email.strip().lower()}")
        if as_json:
            _emit_json(
                {"guest_id": unblocked.id, "email": unblocked.normalized_email, "blocked": False}
            )
        else:
            click.echo(f"Unblocked {unblocked.normalized_email} (guest {unblocked.id}).")


@main.command("audit")
@click.option("--booking", "booking_id", type=booking_type)
@click.option("--guest", "guest_email")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@database_option()
@json_option
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
            _emit_json([_audit_json(e) for e in entries])
        else:
            _console().print(audit_table(entries, title))


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
@database_option()
@json_option
def purge(
    expired_for: timedelta, batch_size: int, dry_run: bool, database_url: str, as_json: bool
) -> None:
    """Delete long-expired tokens in batches (one DELETE per batch); audit entries are kept."""
    with runtime(database_url) as rt:
        total = rt.guests.count_expired_tokens(expired_for)
        if dry_run:
            deleted = 0
        else:
            console = _console()
            with Progress(console=console, disable=not console.is_terminal) as progress:
                task = progress.add_task("Purging expired tokens", total=total)
                deleted = rt.guests.purge_expired_tokens(
                    expired_for,
                    batch_size=batch_size,
                    on_batch=lambda n: progress.advance(task, n),
                )
        if as_json:
            _emit_json({"matched": total, "deleted": deleted, "dry_run": dry_run})
        elif dry_run:
            click.echo(f"Would delete {total} token(s) expired for more than {expired_for}.")
        else:
            click.echo(f"Deleted {deleted} token(s) expired for more than {expired_for}.")


@main.command("stats")
@database_option()
@json_option
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
            _emit_json(data)
            return
        table = Table(title="Tokens", title_justify="left")
        table.add_column("state")
        table.add_column("count", justify="right")
        for key in ("live", "expired", "used", "invalidated"):
            table.add_row(key, str(data[key]))
        for reason, count in sorted(counts.invalidated_by_reason.items()):
            table.add_row(f"  invalidated: {reason}", str(count))
        _console().print(table)


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
            run_demo(rt, _console())


@contextmanager
def _demo_lock() -> Iterator[None]:
    with open("magiclink-demo.db.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _raw_of(url: str) -> str:
    return url.rsplit("token=", 1)[1]


def raw_token_of(text: str) -> str:
    """The raw token of `text`: the `token` parameter of a pasted link, else `text` itself."""
    if "://" in text or "?" in text:
        values = parse_qs(urlsplit(text.strip()).query).get("token")
        if values:
            return values[0]
    return text


def require_booking(rt: Runtime, booking_id: int) -> None:
    """Exit 1 with a message when the booking does not exist."""
    with rt.uow.transaction(readonly=True) as tx:
        if tx.bookings.get(booking_id) is None:
            raise CliFailure(f"error: no booking {booking_id}")


def run_demo(rt: Runtime, console: Console) -> None:
    """The narrated lifecycle (see `magiclink demo --help`)."""
    guests, uow = rt.guests, rt.uow
    bookings = BookingService(uow, guests, notifier=rt.notifier)
    ratings = RatingService(uow, guests)
    quality = QualityRepository(uow, guests)
    mentor = Requester(user_id=42)
    tomorrow = (guests.clock.now() + timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    step = iter(range(1, 100))

    def say(title: str) -> None:
        console.print(f"\n[bold]{next(step)}. {title}[/bold]")

    def check(label: str, raw: str) -> None:
        try:
            verified = guests.verify_token(raw)
        except MagicLinkError as refused:
            console.print(f"   {label}: [red]refused[/red] - {refused.message} ({refused.code})")
        else:
            console.print(
                f"   {label}: [green]accepted[/green] - token {verified.token.id}"
                f" of {verified.guest.normalized_email}"
            )

    console.print(f"[bold]magiclink demo[/bold] on {rt.url}")

    say("Ada books a session with mentor 42; her first link is mailed")
    booked = bookings.book_session(42, "ada@example.com", tomorrow, timedelta(minutes=30))
    booking = booked.booking
    first_link = rt.notifier.sent[-1].url
    console.print(f"   booking {booking.id} (uid {booking.uid}) at {_when(booking.start_time)} UTC")
    console.print(f"   mailed to {rt.notifier.sent[-1].to}: {first_link}")

    say("Ada opens the link (verify: changes nothing, safe for mail scanners)")
    check("first link", _raw_of(first_link))

    say("The mentor moves the session by a day (reschedule)")
    moved = bookings.reschedule_session(booking.id, tomorrow + timedelta(days=1), mentor)
    second_link = rt.notifier.sent[-1].url
    console.print(
        f"   now at {_when(moved.booking.start_time)} UTC, revision {moved.booking.revision};"
        f" new link issued: {moved.link_issued}, mailed: {moved.link_sent}"
    )
    check("old link (stale)", _raw_of(first_link))
    check("new link", _raw_of(second_link))

    say("The session takes place and is marked complete (links stay valid to rate)")
    bookings.mark_session_complete(booking.id)
    check("new link", _raw_of(second_link))

    say("Ada uses her link to rate the session: the link is consumed, then all links die")
    guests.consume_token(_raw_of(second_link))
    rating = ratings.create_rating(booking.id, "mentor-profile-42", 5, "Clear and kind.")
    console.print(f"   rating {rating.id}: {rating.rating}/5")
    check("rating link", _raw_of(second_link))

    say("Ada asks for a fresh link: she can still view the session")
    fresh = guests.request_inbox_link("ada@example.com", booking.id)
    check("fresh link", fresh.raw)

    say("She tries to rate again")
    try:
        ratings.create_rating(booking.id, "mentor-profile-42", 1)
    except MagicLinkError as refused:
        console.print(f"   [red]refused[/red] - {refused.message} ({refused.code})")

    say("Grace books, then cancels herself (student cancellation)")
    grace = bookings.book_session(42, "grace@example.com", tomorrow + timedelta(hours=2)).booking
    grace_link = rt.notifier.sent[-1].url
    bookings.cancel_session(grace.id, "exam clash", "student", Requester(email="grace@example.com"))
    check("Grace's link", _raw_of(grace_link))

    say("Linus books and does not show up (no-show, marked by the mentor)")
    linus = bookings.book_session(42, "linus@example.com", tomorrow + timedelta(hours=4)).booking
    linus_link = rt.notifier.sent[-1].url
    bookings.mark_session_as_no_show(linus.id, mentor)
    check("Linus's link", _raw_of(linus_link))

    say("Barbara's session is reported in an incident, found by booking uid")
    barbara = bookings.book_session(42, "barbara@example.com", tomorrow + timedelta(hours=6))
    barbara_link = rt.notifier.sent[-1].url
    incident = quality.create_incident(
        "mentor-profile-42", barbara.booking.uid, "technical_issue", "Video kept dropping."
    )
    console.print(f"   incident {incident.id} on booking {incident.booking_id}")
    check("Barbara's link", _raw_of(barbara_link))

    say(f"The audit trail of Ada's booking {booking.id}")
    console.print(audit_table(guests.audit_trail(booking_id=booking.id), ""))

    say("Metrics")
    _print_metrics(console, rt.metrics)


def _print_metrics(console: Console, metrics: InMemoryMetrics) -> None:
    table = Table(title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    snapshot = metrics.snapshot()
    for name in (MetricNames.TOKENS_ISSUED, MetricNames.INVALIDATIONS, MetricNames.VERIFICATIONS):
        for labels, value in sorted(snapshot.get(name, {}).items()):
            table.add_row(f"{name}{{{labels}}}", f"{value:g}")
    latency = metrics.summary(MetricNames.INVALIDATION_LATENCY)
    for key in ("p50", "p95", "p99"):
        seconds = latency[key]
        shown = "-" if seconds is None else f"{seconds * 1000:.2f} ms"
        table.add_row(f"invalidation latency {key}", shown)
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    main()
