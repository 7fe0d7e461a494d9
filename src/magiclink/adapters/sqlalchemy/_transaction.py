"""The SQLAlchemy transaction: one pooled connection, one database transaction, and the
repositories bound to it (how it is checked out and set up: `_unit_of_work`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine, PoolProxiedConnection

from magiclink.adapters.sqlalchemy import _repositories as repositories
from magiclink.adapters.sqlalchemy._connections import (
    Flavour,
    leave_autocommit,
    sqlite_in_transaction,
)
from magiclink.adapters.sqlalchemy._errors import translate, translate_errors
from magiclink.adapters.sqlalchemy._fastpath import FastPath
from magiclink.domain._enums import InvalidationReason
from magiclink.domain._errors import StorageError
from magiclink.domain._records import InvalidationResult, MagicLinkToken, NewAuditEntry, TokenLookup
from magiclink.ports._unit_of_work import OnFirstUse, Transaction

R = TypeVar("R")


def _bound(repository: Callable[..., R]) -> OnFirstUse[R]:
    """The transaction's `repository`, made on first use on its connection and fast path."""
    return OnFirstUse(lambda tx: repository(tx, fast=tx._fast))


class SqlAlchemyTransaction(Transaction):
    """One database transaction on one pooled connection, and the repositories bound to it.

    The database transaction begins with the first statement (so an unused transaction costs
    only a pool checkout), and begins again after `commit()` or `rollback()` if the
    repositories are used once more. `close()` rolls back what was not committed and returns
    the connection to the pool; it never raises.
    """

    def __init__(
        self,
        connection: Connection | PoolProxiedConnection,
        flavour: Flavour,
        *,
        readonly: bool,
        fast: FastPath | None = None,
        restore_autocommit: bool = False,
        engine: Engine | None = None,
    ) -> None:
        # A read-only transaction on the fast path starts on the bare pooled connection
        # (`pooled`) and wraps it in a `Connection` only if a Core statement needs one.
        self._connection: Connection | None = None
        self._pooled: PoolProxiedConnection | None = None
        if isinstance(connection, Connection):
            self._connection = connection
        else:
            if engine is None or fast is None:
                # Its statements, commit and rollback all go through the fast path.
                raise ValueError("a bare pooled connection needs its engine and fast path")
            self._pooled = connection
        self._engine = engine
        # The unit of work switched this checkout's DBAPI connection to autocommit itself
        # (a read-only transaction on psycopg): `close()` switches it back.
        self._restore_autocommit = restore_autocommit
        self._fast = fast
        self._flavour = flavour
        self._readonly = readonly
        self._begun = False
        # Only PostgreSQL (and, to be safe, unknown dialects) aborts the whole transaction on
        # a failed statement; SQLite and MariaDB roll back just that statement.
        self._guard_inserts = flavour in (Flavour.POSTGRESQL, Flavour.OTHER)
        dialect = engine.dialect if engine is not None else connection.dialect
        self._returns_updated_rows = bool(dialect.update_returning) and dialect.name != "sqlite"

    # The repositories, each made on first use: most operations touch one or two of them.
    guests = _bound(repositories.SqlAlchemyGuestRepository)
    tokens = _bound(repositories.SqlAlchemyTokenRepository)
    bookings = _bound(repositories.SqlAlchemyBookingRepository)
    ratings = _bound(repositories.SqlAlchemyRatingRepository)
    incidents = _bound(repositories.SqlAlchemyIncidentRepository)
    audit = _bound(repositories.SqlAlchemyAuditLog)

    @property
    def guard_inserts(self) -> bool:
        """True when conflict-prone inserts must run in a SAVEPOINT (see `ConnectionSource`)."""
        return self._guard_inserts

    def consume_with_audit(self, token_id: int, *, now: datetime, entry: NewAuditEntry) -> bool:
        """See `Transaction.consume_with_audit`: one statement on PostgreSQL (a
        data-modifying CTE), the port's two calls elsewhere."""
        if self._flavour is Flavour.POSTGRESQL:
            return self.tokens.consume_and_audit(token_id, now=now, entry=entry)
        return super().consume_with_audit(token_id, now=now, entry=entry)

    def consume_if_accepted(
        self, token_hash: str, *, now: datetime, booking_id: int | None, entry: NewAuditEntry
    ) -> TokenLookup | None:
        """See `Transaction.consume_if_accepted`: one statement on PostgreSQL (a
        data-modifying CTE); elsewhere None, and the general path consumes."""
        if self._flavour is Flavour.POSTGRESQL:
            return self.tokens.consume_accepted_and_audit(
                token_hash, now=now, booking_id=booking_id, entry=entry
            )
        return super().consume_if_accepted(token_hash, now=now, booking_id=booking_id, entry=entry)

    def claim_and_add_inbox_token(
        self, email: str, token: MagicLinkToken, entry: NewAuditEntry, *, not_after: datetime
    ) -> MagicLinkToken | None:
        """See `Transaction.claim_and_add_inbox_token`: one statement on PostgreSQL (a
        data-modifying CTE); elsewhere None, and the general path issues."""
        if self._flavour is Flavour.POSTGRESQL:
            return self.tokens.claim_and_add_inbox_token(email, token, entry, not_after=not_after)
        return super().claim_and_add_inbox_token(email, token, entry, not_after=not_after)

    def add_token_with_audit(
        self, token: MagicLinkToken, entry: NewAuditEntry, *, before: Sequence[NewAuditEntry] = ()
    ) -> MagicLinkToken:
        """See `Transaction.add_token_with_audit`: on PostgreSQL the entries `before` (if
        any), then one data-modifying CTE; the port's two calls elsewhere."""
        if self._flavour is not Flavour.POSTGRESQL:
            return super().add_token_with_audit(token, entry, before=before)
        if before:
            self.audit.add_many(before)
        return self.tokens.add_with_audit(token, entry)

    def invalidate_booking_with_audit(
        self, booking_id: int, *, reason: InvalidationReason, now: datetime, entry: NewAuditEntry
    ) -> InvalidationResult:
        """See `Transaction.invalidate_booking_with_audit`: one statement on PostgreSQL (a
        data-modifying CTE), the port's two calls elsewhere."""
        if self._flavour is Flavour.POSTGRESQL:
            return self.tokens.invalidate_by_booking_and_audit(
                booking_id, reason=reason, now=now, entry=entry
            )
        return super().invalidate_booking_with_audit(
            booking_id, reason=reason, now=now, entry=entry
        )

    @property
    def returns_updated_rows(self) -> bool:
        """See `ConnectionSource.returns_updated_rows`."""
        return self._returns_updated_rows

    def connection(self) -> Connection:
        """The open connection, with the database transaction begun.

        Raises:
            StorageError: the transaction is closed, or BEGIN failed (transient when the
                database is locked or unreachable).
        """
        connection = self._connection
        if connection is None:
            connection = self._wrap_pooled()
        if not self._begun:
            with translate_errors():
                try:
                    self._begin(connection)
                except BaseException:
                    # Leave the connection reusable: a later call may try BEGIN again.
                    with contextlib.suppress(Exception):
                        connection.rollback()
                    raise
            self._begun = True
        return connection

    def fast_connection(self) -> Connection | PoolProxiedConnection:
        """What the fast path's statements run on, with the database transaction begun: the
        `Connection` once there is one, else the bare pooled connection (a read-only
        transaction sends no BEGIN of its own; a write one on SQLite sends `BEGIN
        IMMEDIATE` on the cursor, and psycopg begins by itself with the first statement).

        Raises:
            StorageError: the transaction is closed, or BEGIN failed (transient when the
                database is locked or unreachable).
        """
        pooled = self._pooled
        if pooled is None:
            return self.connection()
        if not self._begun:
            fast = self._fast
            if (
                fast is not None
                and not self._readonly
                and self._flavour is Flavour.SQLITE
                and not getattr(pooled.dbapi_connection, "in_transaction", False)
            ):
                with translate_errors():
                    fast.execute_driver_sql(pooled, "BEGIN IMMEDIATE")
            self._begun = True
        return pooled

    def _wrap_pooled(self) -> Connection:
        """The `Connection` over the bare pooled connection, made on first need."""
        pooled, engine = self._pooled, self._engine
        if pooled is None or engine is None:
            raise StorageError("Transaction is closed")
        with translate_errors():
            connection = Connection(engine, connection=pooled)
        self._connection, self._pooled = connection, None
        # Whatever pysqlite or psycopg began on the bare connection is this one's now.
        self._begun = False
        return connection

    def _begin(self, connection: Connection) -> None:
        connection.begin()
        if self._flavour is Flavour.SQLITE:
            # A host's "begin" event hook, or sqlite3's autocommit=False mode, may already
            # have opened a (deferred) transaction: then it is the one we use. A read-only
            # transaction opens none of its own (module docstring).
            if not self._readonly and not sqlite_in_transaction(connection):
                fast = self._fast
                if fast is not None and fast.usable():
                    fast.execute_driver_sql(connection, "BEGIN IMMEDIATE")
                else:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif self._flavour is Flavour.MYSQL:
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")

    def commit(self) -> None:
        """Commit what the repositories did since the transaction (or last commit) began.

        Raises:
            StorageError: the transaction is closed, or the database refused the commit.
        """
        self._end(commit=True)

    def rollback(self) -> None:
        """Discard what the repositories did since the transaction (or last commit) began.

        Raises:
            StorageError: the transaction is closed, or the rollback failed.
        """
        self._end(commit=False)

    def _end(self, *, commit: bool) -> None:
        """End the database transaction begun, if any, on whichever connection holds it.
        A Core commit that fails leaves the transaction begun (the caller rolls it back)."""
        connection, pooled = self._connection, self._pooled
        if connection is None and pooled is None:
            raise StorageError("Transaction is closed")
        if not self._begun:
            return
        if commit and connection is not None:
            with translate_errors():
                connection.commit()
            self._begun = False
            return
        self._begun = False
        with translate_errors():
            if connection is not None:
                self._rollback(connection)
            elif pooled is not None and self._fast is not None:
                self._fast.end(pooled, commit=commit)

    def _rollback(self, connection: Connection) -> None:
        if self._flavour is Flavour.SQLITE and sqlite_in_transaction(connection):
            # Explicit, because SQLAlchemy skips the DBAPI rollback when the host's engine
            # runs in AUTOCOMMIT mode and was built with skip_autocommit_rollback=True.
            connection.exec_driver_sql("ROLLBACK")
        connection.rollback()

    def close(self) -> None:
        """Roll back anything not committed and return the connection to the pool.

        Idempotent, and never raises a storage error: if the rollback fails the connection
        is broken, and the database discards the transaction together with it. A
        `BaseException` such as `asyncio.CancelledError` arriving during the rollback
        propagates after the connection went back to the pool (which resets it).
        """
        connection = self._connection
        if connection is None:
            self._close_pooled()
            return
        self._connection = None
        if self._restore_autocommit:
            leave_autocommit(connection)
        try:
            # Whenever a connection was checked out, not only after a completed BEGIN: an
            # asyncio task cancelled while BEGIN IMMEDIATE was in flight leaves the SQLite
            # write lock taken although `_begun` is still False (SQLAlchemy's own rollback is
            # a no-op when it began nothing).
            self._begun = False
            self._rollback(connection)
        except Exception as error:
            if translate(error) is None:
                raise
        finally:
            try:
                connection.close()
            except Exception as error:
                if translate(error) is None:
                    raise

    def _close_pooled(self) -> None:
        """`close()` of a transaction still on its bare pooled connection."""
        pooled = self._pooled
        if pooled is None:
            return
        self._pooled = None
        self._begun = False
        if self._restore_autocommit:
            leave_autocommit(pooled)
        try:
            # Read-only: psycopg ran in autocommit, and pysqlite began nothing unless a
            # write slipped in (then it is discarded here, as the pool's reset would). A
            # write transaction is rolled back whatever the pool's reset-on-return says (a
            # rollback with nothing begun costs no round trip on either driver).
            if not self._readonly or getattr(pooled.dbapi_connection, "in_transaction", False):
                pooled.rollback()
        except Exception as error:
            if translate(error) is None:
                raise
        finally:
            try:
                pooled.close()  # back to the pool, which resets it
            except Exception as error:
                if translate(error) is None:
                    raise


__all__ = ["SqlAlchemyTransaction"]
