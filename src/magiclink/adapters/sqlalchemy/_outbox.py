"""`SqlAlchemyOutbox` and its table `magiclink_outbox` (§11.2).

Claims take `FOR UPDATE SKIP LOCKED` on PostgreSQL and MariaDB/MySQL, so racing workers
each take different rows without waiting; SQLite ignores the clause and serializes writers
by its write lock (the unit of work's `BEGIN IMMEDIATE`). Every method is a constant number
of statements. No column can hold a raw token: the table stores the intent and a token id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    func,
    insert,
    select,
    update,
)

from magiclink.adapters.sqlalchemy._errors import translate_errors
from magiclink.adapters.sqlalchemy._tables import (
    EMAIL_LENGTH,
    MYSQL_TABLE_OPTIONS,
    Id,
    UTCDateTime,
    metadata,
)
from magiclink.adapters.sqlalchemy._unit_of_work import SqlAlchemyTransaction, SqlAlchemyUnitOfWork
from magiclink.ports._outbox import Outbox, OutboxMessage, OutboxState, OutboxStatus
from magiclink.ports._unit_of_work import Transaction

ERROR_LENGTH: Final = 255

outbox: Final = Table(
    "magiclink_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("booking_id", BigInteger, nullable=False),
    Column("booking_revision", Integer, nullable=False),
    Column("guest_email", String(EMAIL_LENGTH), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("token_id", BigInteger, nullable=True),
    Column("last_error", String(ERROR_LENGTH), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Index("ix_magiclink_outbox_state_due", "state", "next_attempt_at"),
    **MYSQL_TABLE_OPTIONS,
)
_COLUMNS: Final = tuple(outbox.c)
_INSERTED: Final = tuple(c.name for c in _COLUMNS if c.name != "id")
"""The columns `enqueue` writes, each from the message's field of that name."""
_CLAIMABLE: Final = (str(OutboxState.PENDING), str(OutboxState.SENDING))


def _message(row: Sequence[Any]) -> OutboxMessage:
    values = dict(zip((c.name for c in _COLUMNS), row, strict=True))
    values["state"] = OutboxState(values["state"])
    return OutboxMessage(**values)


class SqlAlchemyOutbox(Outbox):
    """The outbox in `magiclink_outbox`, on the engine of one `SqlAlchemyUnitOfWork`."""

    def __init__(self, uow: SqlAlchemyUnitOfWork) -> None:
        self._uow = uow

    @staticmethod
    def _connection(tx: Transaction) -> Any:
        if not isinstance(tx, SqlAlchemyTransaction):
            raise TypeError("SqlAlchemyOutbox joins only SqlAlchemyUnitOfWork transactions")
        return tx.connection()

    def enqueue(self, tx: Transaction, message: OutboxMessage) -> int:
        values = {name: getattr(message, name) for name in _INSERTED}
        values["state"] = str(message.state)
        with translate_errors():
            result = self._connection(tx).execute(insert(outbox), values)
            return int(result.inserted_primary_key[0])

    def claim_due(self, *, now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
        due = (
            select(outbox.c.id)
            .where(outbox.c.state.in_(_CLAIMABLE), outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with translate_errors(), self._uow.transaction() as tx:
            connection = tx.connection()
            ids = [row[0] for row in connection.execute(due)]
            if not ids:
                return []
            connection.execute(
                update(outbox)
                .where(outbox.c.id.in_(ids))
                .values(
                    state=str(OutboxState.SENDING),
                    attempts=outbox.c.attempts + 1,
                    next_attempt_at=now + lease,
                )
            )
            rows = connection.execute(
                select(*_COLUMNS).where(outbox.c.id.in_(ids)).order_by(outbox.c.id)
            )
            claimed = [_message(row) for row in rows]
            tx.commit()
            return claimed

    def record_link(self, tx: Transaction, message_id: int, token_id: int) -> None:
        with translate_errors():
            self._connection(tx).execute(
                update(outbox).where(outbox.c.id == message_id).values(token_id=token_id)
            )

    def finish(
        self,
        message_id: int,
        *,
        attempt: int,
        state: OutboxState,
        now: datetime,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {"state": str(state), "last_error": error}
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if state is OutboxState.DELIVERED:
            values["delivered_at"] = now
        statement = (
            update(outbox)
            .where(
                outbox.c.id == message_id,
                outbox.c.state == str(OutboxState.SENDING),
                outbox.c.attempts == attempt,
            )
            .values(**values)
        )
        return self._write(statement)

    def retry(self, message_id: int, *, now: datetime) -> bool:
        statement = (
            update(outbox)
            .where(
                outbox.c.id == message_id,
                outbox.c.state.in_((str(OutboxState.DEAD), str(OutboxState.SKIPPED))),
            )
            .values(state=str(OutboxState.PENDING), attempts=0, next_attempt_at=now)
        )
        return self._write(statement)

    def _write(self, statement: Any) -> bool:
        with translate_errors(), self._uow.transaction() as tx:
            changed = tx.connection().execute(statement).rowcount == 1
            tx.commit()
            return bool(changed)

    def get(self, message_id: int) -> OutboxMessage | None:
        with translate_errors(), self._uow.transaction(readonly=True) as tx:
            row = (
                tx.connection().execute(select(*_COLUMNS).where(outbox.c.id == message_id)).first()
            )
            return None if row is None else _message(row)

    def list(self, *, state: OutboxState | None = None, limit: int = 1000) -> list[OutboxMessage]:
        query = select(*_COLUMNS).order_by(outbox.c.id).limit(limit)
        if state is not None:
            query = query.where(outbox.c.state == str(state))
        with translate_errors(), self._uow.transaction(readonly=True) as tx:
            return [_message(row) for row in tx.connection().execute(query)]

    def status(self) -> OutboxStatus:
        counts = select(outbox.c.state, func.count()).group_by(outbox.c.state)
        oldest = select(func.min(outbox.c.created_at)).where(outbox.c.state.in_(_CLAIMABLE))
        with translate_errors(), self._uow.transaction(readonly=True) as tx:
            connection = tx.connection()
            found = {str(state): int(n) for state, n in connection.execute(counts)}
            first = connection.execute(oldest).scalar()
        return OutboxStatus(
            counts={str(s): found.get(str(s), 0) for s in OutboxState},
            oldest_pending_at=None
            if first is None
            else UTCDateTime().process_result_value(first, self._uow.engine.dialect),
        )


__all__ = ["SqlAlchemyOutbox", "outbox"]
