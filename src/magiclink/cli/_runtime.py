"""What every command shares: the runtime built from the URL, one-line failures, options.

The JSON and table output is `magiclink.cli._output`.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

import click
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from magiclink._bootstrap import Services, build_services
from magiclink.adapters.memory import InMemoryMetrics, InMemoryNotifier
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, current_revision
from magiclink.adapters.sqlalchemy._migrate import missing_from_head, revision_shapes
from magiclink.domain._errors import MagicLinkError, StorageError
from magiclink.domain._guest_service import GuestService

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_URL: Final = "sqlite:///magiclink.db"
DEMO_URL: Final = "sqlite:///magiclink-demo.db"
_DURATION = re.compile(r"(\d+)([wdhms])")
_UNITS: Final = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


MAX_ID: Final = 2**63 - 1
MAX_DURATION: Final = timedelta(days=100 * 366)
_JSON_ERRORS = {"on": False}


__all__ = [
    "CliFailure",
    "DurationType",
    "JsonErrorsGroup",
    "Runtime",
    "database_command",
    "database_option",
    "json_option",
    "open_engine",
    "parse_duration",
    "raw_token_of",
    "require_booking",
    "runtime",
    "unusable",
]


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


def _error_line(error: click.ClickException) -> str:
    """The one line an error prints: `error: ...`, a usage error naming its `--help`."""
    message = " ".join(error.format_message().split()).removeprefix("error: ")
    if isinstance(error, click.UsageError) and error.ctx is not None:
        message += f" (see `{error.ctx.command_path} --help`)"
    return message


def _wants_json(args: Sequence[str]) -> bool:
    words = list(args)
    if "--" in words:
        words = words[: words.index("--")]
    return "--json" in words or _JSON_ERRORS["on"]


class JsonErrorsGroup(click.Group):
    """The `magiclink` group: every error, click's usage errors included, is one line on
    stderr (`error: ...`), or one JSON object `{"error": ..., "exit_code": ...}` when the
    command line holds `--json`; the exit code is kept (2 usage, 1 refused or failed)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; report any error as one line or one JSON object."""
        words = list(sys.argv[1:] if args is None else args)
        _JSON_ERRORS["on"] = False
        try:
            done = super().main(words, prog_name, complete_var, standalone_mode=False, **extra)
            if standalone_mode:
                sys.exit(done if isinstance(done, int) else 0)
            return done
        except click.exceptions.NoArgsIsHelpError as error:
            if not standalone_mode:
                raise
            error.show()
            sys.exit(error.exit_code)
        except click.ClickException as error:
            if not standalone_mode:
                raise
            code, message = error.exit_code, _error_line(error)
        except click.Abort:
            if not standalone_mode:
                raise
            code, message = 1, "aborted"
        if _wants_json(words):
            click.echo(json.dumps({"error": message, "exit_code": code}), err=True)
        else:
            click.echo(f"error: {message}", err=True)
        sys.exit(code)


def _json_errors(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    _JSON_ERRORS["on"] = bool(value)
    return bool(value)


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `1d12h`, `90m`, `30s`, `2w` → timedelta; anything else → ValueError.

    Units: `s` seconds, `m` minutes, `h` hours, `d` days, `w` weeks; at most 100 years (a
    cutoff further back than that is not a date a database can compare).
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
    if duration > MAX_DURATION:
        raise ValueError(f"{text!r} is too long a duration (at most 100 years)")
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
        return _CORRUPT
    return _one_line(cause)


_CORRUPT: Final = "the file is not a SQLite database (corrupt or another format)"


def unusable(error: BaseException, doing: str = "cannot reach the database") -> CliFailure:
    """The one-line failure of a database that cannot be used: a corrupt file is named as
    such, not as an unreachable database."""
    cause = _cause(error)
    if cause == _CORRUPT:
        return CliFailure(f"error: {cause}")
    return CliFailure(f"error: {doing}: {cause}")


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
            raise unusable(error) from error
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
    def services(self) -> Services:
        """The four services (`magiclink.build_services`), recording to `metrics`."""
        return build_services(self.uow, notifier=self.notifier, metrics=self.metrics)

    @property
    def guests(self) -> GuestService:
        """The guest service every command works through."""
        return self.services.guests

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
        raise unusable(error, error.message) from error
    except MagicLinkError as error:
        raise CliFailure(f"error: {error.message}") from error
    except SQLAlchemyError as error:
        raise unusable(error, "database failure") from error
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


def database_command(command: Callable[P, R]) -> Callable[P, R]:
    """The options every database command takes: `--database-url`, then `--json`."""
    return database_option()(json_option(command))


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
