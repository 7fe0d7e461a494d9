"""PostgreSQL's combined writes: data-modifying CTEs, each one round trip (issue 15.1).

Each statement here does what two or three statements of `_statements` do — a write and its
audit entries, or a lookup, a consume and its entry — and PostgreSQL alone of the dialects
here runs data-modifying CTEs, so `SqlAlchemyTransaction` uses them on PostgreSQL only. The
audit columns come from `a_*` parameters (`_token_repository._entry_params`), but for the
ones a statement fills in from the row it writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.expression import CTE, Insert, Select

from magiclink.adapters.sqlalchemy._rows import LOOKUP_COLUMNS, TOKEN_COLUMNS
from magiclink.adapters.sqlalchemy._statements import (
    CONSUME_TOKEN,
    INVALIDATE_BY_BOOKING_RETURNING,
    LIVE_TOKEN,
    OPEN_STATUSES,
    SLOT_FREE,
    bind_now,
)
from magiclink.adapters.sqlalchemy._tables import audit_log, bookings, guests, tokens

# Consume and its `CONSUME_TOKEN` entry in one statement, PostgreSQL only (a data-modifying
# CTE): the entry is inserted exactly when the conditional UPDATE matched (issue 15).
_CONSUMED: Final = CONSUME_TOKEN.returning(tokens.c.id).cte("consumed")
_AUDITED: Final = [column.name for column in audit_log.columns if column.name != "id"]


def _entry_values(filled: Mapping[str, Any] | None = None) -> Select[Any]:
    """The SELECT of an audit entry's values for a data-modifying CTE: the `a_*` parameters
    (`_token_repository._entry_params`), but the columns in `filled`, taken from the rows
    it selects from."""
    filled = filled or {}
    return sa.select(
        *(
            filled.get(name, sa.bindparam(f"a_{name}", type_=audit_log.c[name].type))
            for name in _AUDITED
        )
    )


def _insert_entries(values: Select[Any]) -> Insert:
    """The INSERT of one audit entry per row of `values`, returning their ids."""
    return sa.insert(audit_log).from_select(_AUDITED, values).returning(audit_log.c.id)


def _metadata_with(key: str, value: Any) -> Any:
    """The `a_metadata` parameter (JSONB) with `key` set to `value` from the row."""
    return sa.bindparam("a_metadata", type_=postgresql.JSONB()).op(
        "||", return_type=postgresql.JSONB()
    )(sa.func.jsonb_build_object(sa.literal_column(f"'{key}'"), value))


# A row exactly when the token was consumed.
CONSUME_AND_AUDIT: Final = _insert_entries(_entry_values().select_from(_CONSUMED)).add_cte(
    _CONSUMED
)

# The consume of a good link in one statement, PostgreSQL only (`consume_if_accepted`, issue
# 15.1): `CONSUME_TOKEN`'s conditional UPDATE, found by hash, with the rest of R7 and §9.1 in
# its WHERE (the guest not blocked; a bound token only on its own booking; an inbox token only
# on an open booking of its guest's address), then its `CONSUME_TOKEN` entry completed from
# the consumed row as `NewAuditEntry.of_token` completes it, and the lookup of that row. A
# refused link matches nothing: the domain's general path then finds out why.
_scoped = bookings.alias("s")
_owner = guests.alias("o")
_scope = sa.bindparam("p_scope", type_=sa.BigInteger())
_ACCEPTED: Final = (
    sa.update(tokens)
    .where(
        tokens.c.token_hash == sa.bindparam("p_hash"),
        *LIVE_TOKEN,
        sa.exists()
        .where(
            _owner.c.id == tokens.c.guest_id,
            _owner.c.blocked == sa.false(),
            sa.or_(
                _scope.is_(None),
                tokens.c.booking_id == _scope,
                sa.and_(
                    tokens.c.booking_id.is_(None),
                    sa.exists().where(
                        _scoped.c.id == _scope,
                        _scoped.c.guest_email == _owner.c.normalized_email,
                        _scoped.c.status.in_(OPEN_STATUSES),
                    ),
                ),
            ),
        )
        .correlate(tokens),
    )
    .values(used_at=bind_now())
    .returning(*tokens.columns)
    .cte("accepted")
)


def _of_token(row: CTE) -> Mapping[str, Any]:
    """The columns `NewAuditEntry.of_token` fills in, from a token row that a CTE returns."""
    return {
        "guest_id": row.c.guest_id,
        "resource_id": sa.func.coalesce(
            sa.bindparam("a_resource_id", type_=audit_log.c.resource_id.type),
            sa.cast(row.c.booking_id, audit_log.c.resource_id.type),
        ),
        "metadata": _metadata_with("token_id", row.c.id),
    }


_OF_TOKEN: Final = _of_token(_ACCEPTED)
_CONSUMED_ENTRY: Final = _insert_entries(_entry_values(_OF_TOKEN).select_from(_ACCEPTED)).cte(
    "consumed_entry"
)
CONSUME_ACCEPTED_AND_AUDIT: Final = (
    sa.select(
        *(_ACCEPTED.c[column.name].label(f"token_{column.name}") for column in tokens.columns),
        *LOOKUP_COLUMNS[len(TOKEN_COLUMNS) :],
    )
    .select_from(
        _ACCEPTED.join(guests, guests.c.id == _ACCEPTED.c.guest_id).outerjoin(
            bookings, bookings.c.id == _ACCEPTED.c.booking_id
        )
    )
    .add_cte(_CONSUMED_ENTRY)
)

# A new token and its `CREATE_TOKEN` entry in one statement, PostgreSQL only
# (`Transaction.add_token_with_audit`, issue 15.1): the INSERT of `INSERT_TOKEN`'s columns as
# `t_*` parameters, then the entry completed from the new row as `NewAuditEntry.of_token`
# completes it; the new token's id comes back.
_TOKEN_FIELDS: Final = [column.name for column in tokens.columns if column.name != "id"]
_NEW_TOKEN_VALUES: Final = {
    name: sa.bindparam(f"t_{name}", type_=tokens.c[name].type) for name in _TOKEN_FIELDS
}
_NEW_TOKEN: Final = (
    sa.insert(tokens)
    .values(_NEW_TOKEN_VALUES)
    .returning(tokens.c.id, tokens.c.guest_id, tokens.c.booking_id)
    .cte("new_token")
)
_CREATED_ENTRY: Final = _insert_entries(
    _entry_values(_of_token(_NEW_TOKEN)).select_from(_NEW_TOKEN)
).cte("created_entry")
ADD_TOKEN_AND_AUDIT: Final = sa.select(_NEW_TOKEN.c.id).add_cte(_CREATED_ENTRY)

# A guest's request for an inbox link in one statement, PostgreSQL only
# (`Transaction.claim_and_add_inbox_token`, issue 15.1): `CLAIM_REQUEST_SLOT`'s conditional
# UPDATE of the unblocked guest found by address, then the new token as `ADD_TOKEN_AND_AUDIT`
# inserts it, its guest id taken from the claimed row, and its entry. No row, and nothing
# written, when the guest is unknown, blocked or within the interval.
_CLAIMED: Final = (
    sa.update(guests)
    .where(
        guests.c.normalized_email == sa.bindparam("p_email"),
        guests.c.blocked == sa.false(),
        SLOT_FREE,
    )
    .values(last_request_at=bind_now())
    .returning(guests.c.id)
    .cte("claimed")
)
_CLAIMED_TOKEN: Final = (
    sa.insert(tokens)
    .from_select(
        _TOKEN_FIELDS,
        sa.select(
            *(
                _CLAIMED.c.id if name == "guest_id" else _NEW_TOKEN_VALUES[name]
                for name in _TOKEN_FIELDS
            )
        ),
    )
    .returning(tokens.c.id, tokens.c.guest_id, tokens.c.booking_id)
    .cte("claimed_token")
)
_CLAIMED_ENTRY: Final = _insert_entries(
    _entry_values(_of_token(_CLAIMED_TOKEN)).select_from(_CLAIMED_TOKEN)
).cte("claimed_entry")
CLAIM_AND_ADD_INBOX_TOKEN: Final = sa.select(
    _CLAIMED_TOKEN.c.id, _CLAIMED_TOKEN.c.guest_id
).add_cte(_CLAIMED_ENTRY)


# A batch invalidation and its `INVALIDATE_TOKEN` entries (one per guest, the template's
# metadata with that guest's `count` last) in one statement, PostgreSQL only (a data-modifying
# CTE, issue 15): the per-guest counts come back; the INSERT runs whether or not it is read.
_KILLED: Final = INVALIDATE_BY_BOOKING_RETURNING.cte("killed")
_PER_GUEST: Final = (
    sa.select(_KILLED.c.guest_id, sa.func.count().label("n"))
    .group_by(_KILLED.c.guest_id)
    .cte("per_guest")
)
_COUNTED: Final[Mapping[str, Any]] = {
    "guest_id": _PER_GUEST.c.guest_id,
    "metadata": _metadata_with("count", _PER_GUEST.c.n),
}
_ENTRIES: Final = _insert_entries(_entry_values(_COUNTED).order_by(_PER_GUEST.c.guest_id)).cte(
    "entries"
)
INVALIDATE_BY_BOOKING_AND_AUDIT: Final = (
    sa.select(_PER_GUEST.c.guest_id, _PER_GUEST.c.n)
    .add_cte(_ENTRIES)
    .order_by(_PER_GUEST.c.guest_id)
)

__all__ = [
    "ADD_TOKEN_AND_AUDIT",
    "CLAIM_AND_ADD_INBOX_TOKEN",
    "CONSUME_ACCEPTED_AND_AUDIT",
    "CONSUME_AND_AUDIT",
    "INVALIDATE_BY_BOOKING_AND_AUDIT",
]
