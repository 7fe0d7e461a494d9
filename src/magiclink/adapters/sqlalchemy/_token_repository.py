"""The SQLAlchemy Core token repository: the hot path (lookup and consume) lives here.

Statements come from `_statements` and `_combined`, built once at import; rows become
records, and records insert parameters, through `_rows`, by column name. Each method issues a
fixed number of statements, whatever the number of tokens involved (R10.5).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy import Executable, RowMapping

from magiclink.adapters.sqlalchemy import _combined as combined
from magiclink.adapters.sqlalchemy import _statements as sql
from magiclink.adapters.sqlalchemy._errors import translating
from magiclink.adapters.sqlalchemy._repository_base import SqlAlchemyRepository, new_id
from magiclink.adapters.sqlalchemy._rows import (
    audit_values,
    invalidation_from_rows,
    lookup_from_row,
    lookup_reader,
    stats_from_rows,
    token_from_row,
    token_values,
)
from magiclink.domain._enums import InvalidationReason
from magiclink.domain._errors import StorageError
from magiclink.domain._records import InvalidationResult, MagicLinkToken, NewAuditEntry, TokenLookup
from magiclink.ports._repositories import TokenRepository, TokenStats


class SqlAlchemyTokenRepository(SqlAlchemyRepository, TokenRepository):
    """Tokens (hashes only) in `magiclink_tokens`.

    With a `FastPath` (given by `SqlAlchemyUnitOfWork` for the drivers it suits), `add`,
    `lookup`, `consume` and `invalidate_by_booking` run their pre-compiled statements on the
    transaction's DBAPI cursor whenever no cursor-level listener is on the engine (the same
    statements, on the same connection and transaction); everything else goes through Core.
    """

    @translating
    def add(self, token: MagicLinkToken) -> MagicLinkToken:
        """Store a new, live token (one INSERT)."""
        fast = self._fast
        if fast is not None and fast.usable():
            new = fast.insert(self._fast_connection(), "insert_token", token_values(token))
            if new is None:
                raise StorageError("Storage error: the database returned no id for a new row")
            return attrs.evolve(token, id=int(new))
        result = self._source.connection().execute(sql.INSERT_TOKEN, token_values(token))
        return attrs.evolve(token, id=new_id(result))

    @translating
    def add_with_audit(self, token: MagicLinkToken, entry: NewAuditEntry) -> MagicLinkToken:
        """`add` and the insert of `entry.of_token(stored)`, in one statement (PostgreSQL:
        `ADD_TOKEN_AND_AUDIT`, a data-modifying CTE); the stored token."""
        params = {f"t_{name}": value for name, value in token_values(token).items()}
        params.update(_entry_params(entry))
        row = self._first(combined.ADD_TOKEN_AND_AUDIT, params, _as_read)
        if row is None:
            raise StorageError("Storage error: the database returned no id for a new row")
        return attrs.evolve(token, id=int(row["id"]))

    @translating
    def claim_and_add_inbox_token(
        self, email: str, token: MagicLinkToken, entry: NewAuditEntry, *, not_after: datetime
    ) -> MagicLinkToken | None:
        """The guest's slot claim, `add` of its new token and the insert of
        `entry.of_token(stored)`, in one statement (PostgreSQL: `CLAIM_AND_ADD_INBOX_TOKEN`, a
        data-modifying CTE); the stored token, or None when no guest was claimed."""
        params: dict[str, Any] = {
            f"t_{name}": value for name, value in token_values(token).items() if name != "guest_id"
        }
        params.update(_entry_params(entry))
        params.update(p_email=email, p_now=token.created_at, p_not_after=not_after)
        row = self._first(combined.CLAIM_AND_ADD_INBOX_TOKEN, params, _as_read)
        if row is None:
            return None
        return attrs.evolve(token, id=int(row["id"]), guest_id=int(row["guest_id"]))

    @translating
    def lookup(self, token_hash: str) -> TokenLookup | None:
        """Token, guest and booking state in one SELECT (token JOIN guest LEFT JOIN booking)."""
        return self._lookup(sql.LOOKUP_TOKEN, {"p_hash": token_hash})

    @translating
    def get(self, token_id: int) -> MagicLinkToken | None:
        """The token with this id, or None (one SELECT)."""
        return self._first(sql.GET_TOKEN, {"p_id": token_id}, token_from_row)

    @translating
    def consume(self, token_id: int, *, now: datetime) -> bool:
        """Mark the token used if it is live at `now` (one conditional UPDATE)."""
        return self._rowcount(sql.CONSUME_TOKEN, {"p_id": token_id, "p_now": now}) == 1

    @translating
    def consume_and_audit(self, token_id: int, *, now: datetime, entry: NewAuditEntry) -> bool:
        """`consume` and, if it matched, the insert of `entry`, in one statement (PostgreSQL:
        `CONSUME_AND_AUDIT`, a data-modifying CTE); True when the token was consumed."""
        params = {"p_id": token_id, "p_now": now, **_entry_params(entry)}
        return self._first(combined.CONSUME_AND_AUDIT, params, _as_read) is not None

    @translating
    def consume_accepted_and_audit(
        self, token_hash: str, *, now: datetime, booking_id: int | None, entry: NewAuditEntry
    ) -> TokenLookup | None:
        """Consume the token if verification accepts it, with `entry.of_token(token)`, in one
        statement (PostgreSQL: `CONSUME_ACCEPTED_AND_AUDIT`, a data-modifying CTE); its lookup,
        or None when nothing matched (see `Transaction.consume_if_accepted`)."""
        params = {"p_hash": token_hash, "p_now": now, "p_scope": booking_id}
        params.update(_entry_params(entry))
        return self._lookup(combined.CONSUME_ACCEPTED_AND_AUDIT, params)

    @translating
    def invalidate(
        self, token_id: int, *, reason: InvalidationReason, now: datetime
    ) -> MagicLinkToken | None:
        """Invalidate one token; the token as it was, or None (SELECT FOR UPDATE + UPDATE)."""
        before = self._first(sql.GET_TOKEN_FOR_UPDATE, {"p_id": token_id}, token_from_row)
        if before is None or before.invalidated:
            return None
        params = {"p_id": token_id, "p_reason": str(reason), "p_now": now}
        return before if self._rowcount(sql.INVALIDATE_TOKEN, params) == 1 else None

    @translating
    def invalidate_by_booking(
        self, booking_id: int, *, reason: InvalidationReason, now: datetime
    ) -> InvalidationResult:
        """Invalidate the booking's tokens not yet invalidated; newly invalidated per guest.

        PostgreSQL (any dialect with UPDATE ... RETURNING but SQLite): one UPDATE ...
        RETURNING guest_id. MariaDB/MySQL and SQLite: one SELECT guest_id, count(*) ...
        GROUP BY guest_id (locking the rows on MariaDB/MySQL; on SQLite the write
        transaction's BEGIN IMMEDIATE already holds the write lock), then one UPDATE of
        exactly the counted rows. SQLite has RETURNING, but it buffers the updated rows and
        hands them back one step each: for a booking of 1,000 tokens that costs more, at the
        driver level, than reading the grouped count first.
        """
        params: dict[str, Any] = {"p_booking": booking_id, "p_reason": str(reason), "p_now": now}
        if self._source.returns_updated_rows:
            rows = self._all(sql.INVALIDATE_BY_BOOKING_RETURNING, params, _guest_id)
            return InvalidationResult(per_guest=dict(Counter(rows)))
        counts = self._all(sql.LOCK_AND_COUNT_BY_BOOKING, params, _as_read)
        if not counts:
            return InvalidationResult(per_guest={})
        params["p_max_id"] = max(row["max_id"] for row in counts)
        self._rowcount(sql.INVALIDATE_BY_BOOKING_UP_TO, params)
        return invalidation_from_rows(counts)

    @translating
    def invalidate_by_booking_and_audit(
        self, booking_id: int, *, reason: InvalidationReason, now: datetime, entry: NewAuditEntry
    ) -> InvalidationResult:
        """`invalidate_by_booking` and, per guest, `entry.counted(guest, count)`, in one
        statement (PostgreSQL: `INVALIDATE_BY_BOOKING_AND_AUDIT`, a data-modifying CTE)."""
        params = {"p_booking": booking_id, "p_reason": str(reason), "p_now": now}
        params.update(_entry_params(entry))
        rows = self._all(combined.INVALIDATE_BY_BOOKING_AND_AUDIT, params, _as_read)
        return InvalidationResult(per_guest={row["guest_id"]: row["n"] for row in rows})

    @translating
    def invalidate_live(
        self, *, guest_id: int, booking_id: int | None, reason: InvalidationReason, now: datetime
    ) -> int:
        """Invalidate the guest's live tokens for this booking, or inbox links (one UPDATE)."""
        params = {"p_guest": guest_id, "p_reason": str(reason), "p_now": now}
        if booking_id is None:
            statement = sql.INVALIDATE_LIVE_INBOX
        else:
            statement = sql.INVALIDATE_LIVE_FOR_BOOKING
            params["p_booking"] = booking_id
        return self._rowcount(statement, params)

    @translating
    def invalidate_all_live(
        self, *, guest_id: int, reason: InvalidationReason, now: datetime
    ) -> int:
        """Invalidate the guest's live tokens, of any booking or none (one UPDATE)."""
        params = {"p_guest": guest_id, "p_reason": str(reason), "p_now": now}
        return self._rowcount(sql.INVALIDATE_ALL_LIVE_OF_GUEST, params)

    @translating
    def list_by_booking(self, booking_id: int) -> list[MagicLinkToken]:
        """Every token of the booking, oldest first (one SELECT)."""
        return self._all(sql.LIST_TOKENS_BY_BOOKING, {"p_booking": booking_id}, token_from_row)

    @translating
    def purge_expired(self, *, expired_before: datetime, limit: int) -> int:
        """Delete at most `limit` tokens expired before `expired_before` (one DELETE)."""
        if limit <= 0:
            return 0
        return self._rowcount(sql.PURGE_EXPIRED, {"p_before": expired_before, "p_limit": limit})

    @translating
    def count_expired(self, *, expired_before: datetime) -> int:
        """How many tokens have `expires_at < expired_before` (one SELECT)."""
        count = (
            self._source.connection()
            .execute(sql.COUNT_EXPIRED, {"p_before": expired_before})
            .scalar_one()
        )
        return int(count)

    @translating
    def stats(self, *, now: datetime) -> TokenStats:
        """Live, expired, used and invalidated counts, and invalidations by reason (two SELECTs)."""
        conn = self._source.connection()
        totals = conn.execute(sql.TOKEN_STATS, {"p_now": now}).mappings().one()
        return stats_from_rows(totals, conn.execute(sql.INVALIDATIONS_BY_REASON).mappings())

    def _lookup(self, statement: Executable, params: dict[str, Any]) -> TokenLookup | None:
        """The `TokenLookup` of the first row of a statement selecting `LOOKUP_COLUMNS`."""
        fast = self._fast
        if fast is not None and fast.usable():
            return fast.record(self._fast_connection(), statement, params, lookup_reader)
        row = self._source.connection().execute(statement, params).first()
        return None if row is None else lookup_from_row(row._mapping)


def _entry_params(entry: NewAuditEntry) -> dict[str, Any]:
    """The `a_*` parameters of a combined write's audit entry (the `_statements` CTEs)."""
    return {f"a_{name}": value for name, value in audit_values(entry).items()}


def _guest_id(row: RowMapping) -> int:
    return int(row["guest_id"])


def _as_read(row: RowMapping) -> RowMapping:
    return row


__all__ = ["SqlAlchemyTokenRepository"]
