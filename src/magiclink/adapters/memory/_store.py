"""The in-memory store and its undo log: what a transaction writes through.

`_Store` holds the committed state, its secondary indexes and the lock that guards them.
`_UndoLog` is the write side of a transaction: every write to the store goes through it and
leaves an undo entry, and `rollback` replays those entries backwards. Index appends are O(1)
(R10.5): the list is appended in place and the `_APPENDED` marker undoes one `list.append`;
an audit entry, added with its three indexes at once, is undone by one `_CALLED` entry.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar, cast

from magiclink.domain._enums import InvalidationReason
from magiclink.domain._errors import StorageError
from magiclink.domain._records import (
    Booking,
    Guest,
    Incident,
    MagicLinkToken,
    NewAuditEntry,
    Rating,
)

K = TypeVar("K")
V = TypeVar("V")

_Change: TypeAlias = tuple[InvalidationReason | None, datetime]
"""What a consume or an invalidation changed in a stored token: the reason it was invalidated
(None for a consumption) and its `used_at` (see `_token_repository`)."""

_MISSING: Final = object()
# Undo marker: the entry `(index_list, _APPENDED, None)` undoes one `list.append`.
_APPENDED: Final = object()
# Undo marker: the entry `(undo, _CALLED, argument)` is undone by `undo(argument)`.
_CALLED: Final = object()


class _Store:
    """The committed state, its secondary indexes and the lock that guards them."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.ids = itertools.count(1)
        self.guests: dict[int, Guest] = {}
        self.guest_by_email: dict[str, int] = {}
        self.bookings: dict[int, Booking] = {}
        self.booking_by_uid: dict[str, int] = {}
        self.tokens: dict[int, MagicLinkToken] = {}  # as added
        self.token_changes: dict[int, _Change] = {}  # consumed or invalidated since
        self.token_by_hash: dict[str, int] = {}
        self.tokens_by_booking: dict[int, list[int]] = {}
        self.tokens_by_guest: dict[int, list[int]] = {}
        # A guest's inbox tokens (booking None) not yet seen spent by a supersede.
        self.inbox_by_guest: dict[int, list[int]] = {}
        self.ratings: dict[int, Rating] = {}
        self.rating_by_booking: dict[int, int] = {}
        self.incidents: dict[int, Incident] = {}
        # Each entry as written, with a private copy of its metadata: the `AuditEntry` is
        # built when read (rare), not on the hot path of every write.
        self.audit: dict[int, tuple[NewAuditEntry, Mapping[str, Any]]] = {}
        self.audit_by_resource: dict[str, list[int]] = {}
        self.audit_by_guest: dict[int, list[int]] = {}
        self.audit_by_operation: dict[str, list[int]] = {}

    def next_id(self) -> int:
        return next(self.ids)

    def add_audit(self, new: NewAuditEntry) -> int:
        """Append an entry (with a private copy of its metadata) and enter it in its
        indexes, each in O(1); its id. Undone by `remove_audit(id)`, newest first."""
        entry_id = next(self.ids)
        self.audit[entry_id] = (new, MappingProxyType(dict(new.metadata)))
        for index, key in self._audit_keys(new):
            if key is not None:
                entries = index.get(key)
                if entries is None:
                    index[key] = [entry_id]
                else:
                    entries.append(entry_id)
        return entry_id

    def remove_audit(self, entry_id: int) -> None:
        """Undo `add_audit` of the newest entry still added: out of the log and its indexes."""
        new, _ = self.audit.pop(entry_id)
        for index, key in self._audit_keys(new):
            if key is not None:
                entries = index[key]
                entries.pop()
                if not entries:
                    del index[key]

    def _audit_keys(self, new: NewAuditEntry) -> tuple[tuple[dict[Any, list[int]], Any], ...]:
        return (
            (self.audit_by_resource, new.resource_id),
            (self.audit_by_guest, new.guest_id),
            (self.audit_by_operation, new.operation_id),
        )


class _ClosedStore:
    """What a closed transaction's `store` is: any use raises `StorageError`."""

    def __getattr__(self, name: str) -> Any:
        raise StorageError("Transaction is closed")


_CLOSED: Final = cast(_Store, _ClosedStore())


class _UndoLog:
    """Reads and writes of one open transaction on a `_Store`, remembered for rollback.

    `store` is a plain attribute (read several times per call, a property was a measurable
    cost): `close` swaps it for `_CLOSED`, on which every read raises `StorageError`.
    """

    def __init__(self, store: _Store) -> None:
        self.store = store
        self._store = store
        # (table, key, old), (list, _APPENDED, None) or (undo, _CALLED, argument)
        self._undo: list[tuple[Any, Any, Any]] = []

    def put(self, table: dict[K, V], key: K, value: V) -> None:
        """Write `table[key] = value`, remembering the old value for rollback."""
        self._undo.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def append_index(self, index: dict[K, list[int]], key: K, item: int) -> None:
        """Append `item` to `index[key]` in O(1), remembering how to undo it (R10.5: the
        cost of a write does not grow with the history of its guest or booking)."""
        entries = index.get(key)
        if entries is None:
            self._undo.append((index, key, _MISSING))
            index[key] = [item]
        else:
            entries.append(item)
            self._undo.append((entries, _APPENDED, None))

    def remove(self, table: dict[K, V], key: K) -> None:
        old = table.pop(key, _MISSING)
        if old is not _MISSING:
            self._undo.append((table, key, old))

    def rollback(self) -> None:
        undo = self._undo
        if not undo:
            return
        for table, key, old in reversed(undo):
            if key is _APPENDED:
                table.pop()
            elif key is _CALLED:
                table(old)
            elif old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old
        undo.clear()


__all__ = ["_APPENDED", "_CALLED", "_CLOSED", "_MISSING", "_Change", "_Store", "_UndoLog"]
