"""The audit log with its one-entry append on the fast path (issue 15).

Consume, issue and a one-guest invalidation each append one entry in their transaction: that
INSERT runs pre-compiled on the transaction's DBAPI cursor (`_fastpath`), without RETURNING
(the log never needs the new id). Several entries, an engine with a cursor-level listener, and
every read take `SqlAlchemyAuditLog`'s Core path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from magiclink.adapters.sqlalchemy._errors import translating
from magiclink.adapters.sqlalchemy._fastpath import FastPath, Source
from magiclink.adapters.sqlalchemy._repositories import SqlAlchemyAuditLog
from magiclink.adapters.sqlalchemy._repository_base import ConnectionSource
from magiclink.adapters.sqlalchemy._rows import audit_values
from magiclink.domain._records import NewAuditEntry


class FastAuditLog(SqlAlchemyAuditLog):
    """`SqlAlchemyAuditLog`, appending a single entry through a `FastPath`."""

    def __init__(self, source: ConnectionSource, fast: FastPath) -> None:
        super().__init__(source)
        self._fast = fast
        self._fast_connection: Callable[[], Source] = getattr(
            source, "fast_connection", source.connection
        )

    @translating
    def add_many(self, entries: Sequence[NewAuditEntry]) -> None:
        """Append the entries: one INSERT (a batched one for several); nothing when empty."""
        fast = self._fast
        if len(entries) == 1 and fast.usable():
            fast.rowcount(self._fast_connection(), "insert_audit", audit_values(entries[0]))
            return
        super().add_many(entries)


__all__ = ["FastAuditLog"]
