"""`InMemoryAuditLog`: the guest access log in memory, indexed by resource, guest, operation."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from magiclink.adapters.memory._repositories import _Repository
from magiclink.adapters.memory._store import _CALLED
from magiclink.domain._enums import AuditAction
from magiclink.domain._records import AuditEntry, NewAuditEntry
from magiclink.ports._repositories import AuditLog


class InMemoryAuditLog(_Repository, AuditLog):
    """The guest access log in memory, indexed by resource id, guest id and operation id."""

    def add_many(self, entries: Sequence[NewAuditEntry]) -> None:
        store = self._tx.store
        add, log, remove = store.add_audit, self._tx._undo.append, store.remove_audit
        for new in entries:
            log((remove, _CALLED, add(new)))

    def list(
        self, *, booking_id: int | None = None, guest_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        store = self._tx.store
        if booking_id is not None:
            ids: Sequence[int] = store.audit_by_resource.get(str(booking_id), ())
        elif guest_id is not None:
            ids = store.audit_by_guest.get(guest_id, ())
        else:
            ids = list(store.audit)
        entries = [_entry(i, store.audit[i]) for i in ids]
        if booking_id is not None and guest_id is not None:
            entries = [e for e in entries if e.guest_id == guest_id]
        entries.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return entries[: max(limit, 0)]

    def by_operation(self, operation_id: str) -> Sequence[AuditEntry]:
        store = self._tx.store
        return [_entry(i, store.audit[i]) for i in store.audit_by_operation.get(operation_id, ())]

    def count_links_issued(self, guest_id: int, *, path: str, since: datetime) -> int:
        store = self._tx.store
        return sum(
            1
            for i in store.audit_by_guest.get(guest_id, ())
            if (entry := store.audit[i])[0].action == AuditAction.CREATE_TOKEN
            and entry[1].get("path") == path
            and entry[0].created_at > since
        )


_WRITTEN_FIELDS: Final = [field.name for field in attrs.fields(NewAuditEntry)]
if [field.name for field in attrs.fields(AuditEntry)] != ["id", *_WRITTEN_FIELDS]:
    raise TypeError("AuditEntry must be the id followed by NewAuditEntry's fields, in order")
_written: Final = operator.attrgetter(*_WRITTEN_FIELDS)
_METADATA: Final = _WRITTEN_FIELDS.index("metadata")


def _entry(entry_id: int, stored: tuple[NewAuditEntry, Mapping[str, Any]]) -> AuditEntry:
    """The log's row of a stored entry: its id, then the entry as written, positionally (the
    fields match, checked at import), with the private copy of its metadata."""
    new, metadata = stored
    values = list(_written(new))
    values[_METADATA] = metadata
    return AuditEntry(entry_id, *values)


__all__ = ["InMemoryAuditLog"]
