"""The one place where SQLAlchemy and driver exceptions become magiclink errors.

* a unique violation that means a domain conflict becomes that conflict: a second rating of
  a booking is `DuplicateRating`, a reused booking uid is `InvalidInput`;
* any other integrity failure is `StorageError(transient=False)`;
* a lost connection, a lock or busy timeout, a deadlock or a serialization failure is
  `StorageError(transient=True)`, which the services retry once (R9.4);
* anything else raised by SQLAlchemy or the driver (or text the driver cannot encode) is
  `StorageError(transient=False)`.

Messages name the exception class and, for operational failures, the first line of the
driver's own message, never SQLAlchemy's rendering (which carries the statement's parameters:
token hashes, e-mail addresses). The original exception is chained (`raise ... from`).
"""

from __future__ import annotations

import functools
import sqlite3
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Final, ParamSpec, TypeVar

from sqlalchemy import exc as sa_exc

from magiclink.adapters.sqlalchemy._tables import UQ_BOOKING_UID, UQ_RATING_BOOKING
from magiclink.domain._errors import DuplicateRating, InvalidInput, MagicLinkError, StorageError
from magiclink.ports._unit_of_work import ExcInfo

P = ParamSpec("P")
R = TypeVar("R")

_MAX_DETAIL: Final = 200

# PostgreSQL SQLSTATEs worth one retry: serialization failure, deadlock, lock not available,
# query cancelled (statement/lock timeout), admin shutdown and friends, too many connections.
_PG_TRANSIENT_STATES: Final = frozenset(
    {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300"}
)
# MySQL/MariaDB error numbers worth one retry: lock wait timeout, deadlock, too many
# connections, connection killed/idle timeout; client-side (CR_*) errors are lost connections.
_MYSQL_TRANSIENT_CODES: Final = frozenset({1205, 1213, 1040, 1053, 1927, 4031})
_MYSQL_CLIENT_ERRORS: Final = range(2000, 3000)
_MYSQL_DRIVERS: Final = frozenset({"pymysql", "MySQLdb", "mysql", "mariadb", "aiomysql", "asyncmy"})
# SQLite primary result codes: SQLITE_BUSY and SQLITE_LOCKED.
_SQLITE_TRANSIENT_CODES: Final = frozenset({5, 6})
_MYSQL_SYNTAX_ERROR: Final = 1064

# Constraint name (PostgreSQL, MariaDB) or "table.column" (SQLite) -> the conflict it means.
_CONFLICTS: Final[tuple[tuple[tuple[str, ...], type[MagicLinkError], str | None], ...]] = (
    ((UQ_RATING_BOOKING, "magiclink_ratings.booking_id"), DuplicateRating, None),
    ((UQ_BOOKING_UID, "magiclink_bookings.uid"), InvalidInput, "Booking uid already exists"),
)


class _TranslateErrors(AbstractContextManager[None]):
    """The context manager behind `translate_errors()`: stateless, so one instance serves
    every block (no generator object per use, unlike `@contextmanager`)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: *ExcInfo) -> None:
        error = exc_info[1]
        # Returning (None) lets the exception, if any, propagate unchanged.
        if error is None or isinstance(error, MagicLinkError) or not isinstance(error, Exception):
            return
        translated = translate(error)
        if translated is not None:
            raise translated from error


_TRANSLATE_ERRORS: Final = _TranslateErrors()


def translate_errors() -> AbstractContextManager[None]:
    """Run the block, turning any storage exception into a magiclink error (see module doc).

    Magiclink errors raised inside the block pass through unchanged; exceptions that do not
    come from SQLAlchemy or a database driver (a bug), and `BaseException`s that are not
    `Exception`s (KeyboardInterrupt...), propagate unchanged too.
    """
    return _TRANSLATE_ERRORS


def translating(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate a repository method so that it raises only magiclink errors.

    The same translation as `translate_errors()`, written as a plain try/except: every
    repository call goes through it, and this is its cheapest form.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except MagicLinkError:
            raise
        except Exception as error:
            translated = translate(error)
            if translated is None:
                raise
            raise translated from error

    return wrapper


def translate(error: BaseException) -> MagicLinkError | None:
    """The magiclink error a storage exception means, or None if it is not a storage one."""
    if isinstance(error, sa_exc.IntegrityError):
        return integrity_error(error)
    if isinstance(error, sa_exc.SQLAlchemyError) or _is_driver_error(error):
        return storage_error(error)
    if isinstance(error, UnicodeEncodeError):
        # Drivers encode text themselves and let this escape unwrapped: a lone surrogate
        # cannot be stored in UTF-8 on any database.
        return StorageError(
            "Storage error (UnicodeEncodeError): text the database cannot store (not UTF-8)"
        )
    return None


def integrity_error(error: sa_exc.IntegrityError) -> MagicLinkError:
    """The domain conflict a constraint violation means, else a permanent `StorageError`."""
    text = str(error.orig)
    constraint = _constraint_name(error)
    for names, error_type, message in _CONFLICTS:
        if constraint in names or any(name in text for name in names):
            return error_type(message) if message is not None else error_type()
    # The driver's text may quote the offending value (a token hash, an e-mail): leave it out.
    suffix = f" on {constraint}" if constraint else ""
    return StorageError(f"Storage error (IntegrityError): constraint violated{suffix}")


def storage_error(error: BaseException) -> StorageError:
    """A `StorageError` for any SQLAlchemy or driver exception, with `transient` decided."""
    cause = error.orig if isinstance(error, sa_exc.StatementError) else None
    source = cause if isinstance(cause, BaseException) else error
    detail = "" if _may_quote_values(error, source) else _first_line(source)
    message = f"Storage error ({type(source).__name__})" + (f": {detail}" if detail else "")
    return StorageError(message, transient=is_transient(error))


def is_transient(error: BaseException) -> bool:
    """True when retrying the transaction may succeed (lost connection, lock, deadlock)."""
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        orig: BaseException | None = error.orig
    elif isinstance(error, sa_exc.TimeoutError):
        return True  # the pool had no connection to give in time
    else:
        orig = error
    if orig is None:
        return False
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _SQLITE_TRANSIENT_CODES:
            return True
        text = str(orig).lower()
        return "database is locked" in text or "database table is locked" in text
    module = _module_of(orig)
    if module in _MYSQL_DRIVERS:
        # MySQL drivers report the server's error number first; their SQLSTATE is mostly
        # the catch-all HY000, so it is not used.
        code = orig.args[0] if orig.args and isinstance(orig.args[0], int) else None
        return code is not None and (code in _MYSQL_TRANSIENT_CODES or code in _MYSQL_CLIENT_ERRORS)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate in _PG_TRANSIENT_STATES or sqlstate.startswith("08")
    if module in ("psycopg", "psycopg2"):
        # No SQLSTATE: the failure happened client-side, the server could not be reached.
        return isinstance(error, sa_exc.OperationalError)
    return False


def _constraint_name(error: sa_exc.IntegrityError) -> str | None:
    diag = getattr(error.orig, "diag", None)  # psycopg exposes the violated constraint
    name = getattr(diag, "constraint_name", None)
    return name if isinstance(name, str) else None


def _first_line(error: BaseException) -> str:
    args: tuple[Any, ...] = getattr(error, "args", ())
    # pymysql: args == (code, message); others: str(error) is the message.
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = f"({args[0]}) {args[1]}"
    else:
        text = str(error)
    lines = text.strip().splitlines()
    return lines[0][:_MAX_DETAIL] if lines else ""


def _may_quote_values(error: BaseException, source: BaseException) -> bool:
    """True when the driver's message may quote a bound value (a hash, an e-mail)."""
    if isinstance(error, sa_exc.IntegrityError | sa_exc.DataError):
        return True
    # pymysql interpolates parameters client-side, so a syntax error quotes them.
    args: tuple[Any, ...] = getattr(source, "args", ())
    return bool(args) and args[0] == _MYSQL_SYNTAX_ERROR


def _module_of(error: BaseException) -> str:
    return type(error).__module__.partition(".")[0]


def _is_driver_error(error: BaseException) -> bool:
    """True for a PEP 249 driver exception that escaped SQLAlchemy's wrapping."""
    if isinstance(error, sqlite3.Error):
        return True
    for module_name in ("psycopg", "psycopg2", "pymysql", "MySQLdb"):
        module = sys.modules.get(module_name)
        base = getattr(module, "Error", None)
        if isinstance(base, type) and isinstance(error, base):
            return True
    return False


__all__ = [
    "integrity_error",
    "is_transient",
    "storage_error",
    "translate",
    "translate_errors",
    "translating",
]
