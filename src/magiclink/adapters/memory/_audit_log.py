"""`InMemoryAuditLog`: the guest access log in memory, indexed by resource, guest, operation.

An entry is stored as the `NewAuditEntry` it was written from and a private copy of its
metadata (`_AuditRow`, keyed by id); the `AuditEntry` is built when it is read. Building it
at write time (its converter wraps the metadata) was a third of an in-memory consume, and
most entries are never read back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeAlias

from magiclink.adapters.memory._repositories import _Repository
from magiclink.adapters.memory._store import _MISSING
from magiclink.domain._enums import AuditAction
from magiclink.domain._records import AuditEntry, NewAuditEntry
from magiclink.ports._repositories import AuditLog

_AuditRow: TypeAlias = tuple[NewAuditEntry, dict[str, Any]]
"""A stored entry: what was written, and a copy of its metadata the caller cannot change."""


def _entry(entry_id: int, row: _AuditRow) -> AuditEntry:
    new, metadata = row
    return AuditEntry(
        id=entry_id,
        guest_id=new.guest_id,
        endpoint=new.endpoint,
        action=new.action,
        resource_id=new.resource_id,
        success=new.success,
        metadata=metadata,
        created_at=new.created_at,
        operation_id=new.operation_id,
    )


class InMemoryAuditLog(_Repository, AuditLog):
    """The guest access log in memory, indexed by resource id, guest id and operation id."""

    def add_many(self, entries: Sequence[NewAuditEntry]) -> None:
        tx = self._tx
        store = tx.store
        audit, log = store.audit, tx._undo.append
        for new in entries:
            entry_id = store.next_id()  # fresh: nothing to restore but its absence
            log((audit, entry_id, _MISSING))
            audit[entry_id] = (new, dict(new.metadata or ()))
            if new.resource_id is not None:
                tx.append_index(store.audit_by_resource, new.resource_id, entry_id)
            if new.guest_id is not None:
                tx.append_index(store.audit_by_guest, new.guest_id, entry_id)
            if new.operation_id is not None:
                tx.append_index(store.audit_by_operation, new.operation_id, entry_id)

    def _entries(self, ids: Iterable[int]) -> list[AuditEntry]:
        audit = self._tx.store.audit
        return [_entry(i, audit[i]) for i in ids]

    def list(
        self, *, booking_id: int | None = None, guest_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        store = self._tx.store
        audit = store.audit
        if booking_id is not None:
            ids: Sequence[int] = store.audit_by_resource.get(str(booking_id), ())
            if guest_id is not None:
                ids = [i for i in ids if audit[i][0].guest_id == guest_id]
        elif guest_id is not None:
            ids = store.audit_by_guest.get(guest_id, ())
        else:
            ids = list(audit)
        newest = sorted(ids, key=lambda i: (audit[i][0].created_at, i), reverse=True)
        return self._entries(newest[: max(limit, 0)])

    def by_operation(self, operation_id: str) -> Sequence[AuditEntry]:
        return self._entries(self._tx.store.audit_by_operation.get(operation_id, ()))

    def count_links_issued(self, guest_id: int, *, path: str, since: datetime) -> int:
        store = self._tx.store
        audit = store.audit
        return sum(
            1
            for i in store.audit_by_guest.get(guest_id, ())
            if (row := audit[i])[0].action == AuditAction.CREATE_TOKEN
            and row[1].get("path") == path
            and row[0].created_at > since
        )


__all__ = ["InMemoryAuditLog"]
