"""`InMemoryOutbox`: the outbox port in process memory, transactional with `InMemoryUnitOfWork`.

Its messages live beside the unit of work's store and are written through the same undo log,
under the same lock: an intent enqueued in a booking's transaction lands or rolls back with it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta

import attrs

from magiclink.adapters.memory._unit_of_work import InMemoryUnitOfWork, _InMemoryTransaction
from magiclink.ports._outbox import Outbox, OutboxMessage, OutboxState, OutboxStatus
from magiclink.ports._unit_of_work import Transaction

_CLAIMABLE = frozenset({OutboxState.PENDING, OutboxState.SENDING})


class InMemoryOutbox(Outbox):
    """Outbox messages in memory, sharing the transactions of one `InMemoryUnitOfWork`."""

    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow
        self._messages: dict[int, OutboxMessage] = {}
        self._ids = itertools.count(1)

    @staticmethod
    def _tx(tx: Transaction) -> _InMemoryTransaction:
        if not isinstance(tx, _InMemoryTransaction):
            raise TypeError("InMemoryOutbox joins only InMemoryUnitOfWork transactions")
        return tx

    def enqueue(self, tx: Transaction, message: OutboxMessage) -> int:
        message_id = next(self._ids)
        self._tx(tx).put(self._messages, message_id, attrs.evolve(message, id=message_id))
        return message_id

    def claim_due(self, *, now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
        with self._uow.transaction() as tx:
            mem = self._tx(tx)
            due = sorted(
                (
                    m
                    for m in self._messages.values()
                    if m.state in _CLAIMABLE and m.next_attempt_at <= now
                ),
                key=lambda m: (m.next_attempt_at, m.id),
            )[:limit]
            claimed = [
                attrs.evolve(
                    m,
                    state=OutboxState.SENDING,
                    attempts=m.attempts + 1,
                    next_attempt_at=now + lease,
                )
                for m in due
            ]
            for message in claimed:
                mem.put(self._messages, message.id, message)
            tx.commit()
            return claimed

    def record_link(self, tx: Transaction, message_id: int, token_id: int) -> None:
        message = self._messages[message_id]
        self._tx(tx).put(self._messages, message_id, attrs.evolve(message, token_id=token_id))

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
        with self._uow.transaction() as tx:
            message = self._messages.get(message_id)
            if (
                message is None
                or message.state is not OutboxState.SENDING
                or message.attempts != attempt
            ):
                return False
            finished = attrs.evolve(
                message,
                state=state,
                next_attempt_at=next_attempt_at or message.next_attempt_at,
                last_error=error,
                delivered_at=now if state is OutboxState.DELIVERED else None,
            )
            self._tx(tx).put(self._messages, message_id, finished)
            tx.commit()
            return True

    def retry(self, message_id: int, *, now: datetime) -> bool:
        with self._uow.transaction() as tx:
            message = self._messages.get(message_id)
            if message is None or message.state not in (OutboxState.DEAD, OutboxState.SKIPPED):
                return False
            revived = attrs.evolve(
                message, state=OutboxState.PENDING, attempts=0, next_attempt_at=now
            )
            self._tx(tx).put(self._messages, message_id, revived)
            tx.commit()
            return True

    def get(self, message_id: int) -> OutboxMessage | None:
        with self._uow.transaction(readonly=True):
            return self._messages.get(message_id)

    def list(self, *, state: OutboxState | None = None, limit: int = 1000) -> list[OutboxMessage]:
        with self._uow.transaction(readonly=True):
            chosen = [m for m in self._messages.values() if state is None or m.state is state]
            return sorted(chosen, key=lambda m: m.id)[:limit]

    def status(self) -> OutboxStatus:
        with self._uow.transaction(readonly=True):
            counts = Counter(str(m.state) for m in self._messages.values())
            waiting = [m.created_at for m in self._messages.values() if m.state in _CLAIMABLE]
            return OutboxStatus(
                counts={str(s): counts.get(str(s), 0) for s in OutboxState},
                oldest_pending_at=min(waiting, default=None),
            )


__all__ = ["InMemoryOutbox"]
