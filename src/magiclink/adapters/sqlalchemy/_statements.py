"""The SQL statements of the repositories, each built once, here at import.

Every statement has named `bindparam()`s: SQLAlchemy compiles each one once per dialect and
serves it from its compiled cache afterwards. The columns a statement selects are the labelled
ones of `_rows`, whose functions read them back by label; the few aggregate columns here are
labelled too, for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import (
    Executable,
    Integer,
    and_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)

from magiclink.adapters.sqlalchemy._rows import (
    AUDIT_COLUMNS,
    BOOKING_COLUMNS,
    GUEST_COLUMNS,
    INCIDENT_COLUMNS,
    LOOKUP_COLUMNS,
    RATING_COLUMNS,
    TOKEN_COLUMNS,
)
from magiclink.adapters.sqlalchemy._tables import (
    UTCDateTime,
    audit_log,
    bookings,
    guests,
    incidents,
    ratings,
    tokens,
)
from magiclink.domain._enums import OPEN_BOOKING_STATUSES, AuditAction


def bind_now() -> Any:
    """The `p_now` parameter: the time of the call."""
    return bindparam("p_now", type_=UTCDateTime())


# --- Guests and bookings ----------------------------------------------------------------

GET_GUEST: Final = select(*GUEST_COLUMNS).where(guests.c.id == bindparam("p_id"))
GET_GUEST_BY_EMAIL: Final = select(*GUEST_COLUMNS).where(
    guests.c.normalized_email == bindparam("p_email")
)
INSERT_GUEST: Final = insert(guests)
# The rate limit's interval (§9.4): the guest's last request is NULL or at most `p_not_after`.
SLOT_FREE: Final = or_(
    guests.c.last_request_at.is_(None),
    guests.c.last_request_at <= bindparam("p_not_after", type_=UTCDateTime()),
)
CLAIM_REQUEST_SLOT: Final = (
    update(guests)
    .where(guests.c.id == bindparam("p_id"), SLOT_FREE)
    .values(last_request_at=bind_now())
)
SET_BLOCKED: Final = (
    update(guests).where(guests.c.id == bindparam("p_id")).values(blocked=bindparam("p_blocked"))
)
SET_BLOCKED_RETURNING: Final = SET_BLOCKED.returning(*GUEST_COLUMNS)

INSERT_BOOKING: Final = insert(bookings)
GET_BOOKING: Final = select(*BOOKING_COLUMNS).where(bookings.c.id == bindparam("p_id"))
# FOR UPDATE is left out by the SQLite compiler: there, BEGIN IMMEDIATE already serializes.
GET_BOOKING_FOR_UPDATE: Final = GET_BOOKING.with_for_update()
GET_BOOKING_BY_UID: Final = select(*BOOKING_COLUMNS).where(bookings.c.uid == bindparam("p_uid"))
UPDATE_BOOKING: Final = (
    update(bookings)
    .where(bookings.c.id == bindparam("p_id"))
    .values(
        status=bindparam("p_status"),
        start_time=bindparam("p_start", type_=UTCDateTime()),
        end_time=bindparam("p_end", type_=UTCDateTime()),
        revision=bindparam("p_revision"),
        operation_id=bindparam("p_operation"),
    )
)
REVOKE_BOOKING_LINKS: Final = (
    update(bookings)
    .where(bookings.c.id == bindparam("p_id"))
    .values(link_generation=bookings.c.link_generation + 1)
)

# --- Tokens -----------------------------------------------------------------------------

INSERT_TOKEN: Final = insert(tokens)
# R7 in one indexed read: the token, its guest, and its booking's state if it still exists
# (status, revision, link generation).
LOOKUP_TOKEN: Final = (
    select(*LOOKUP_COLUMNS)
    .select_from(
        tokens.join(guests, guests.c.id == tokens.c.guest_id).outerjoin(
            bookings, bookings.c.id == tokens.c.booking_id
        )
    )
    .where(tokens.c.token_hash == bindparam("p_hash"))
)
GET_TOKEN: Final = select(*TOKEN_COLUMNS).where(tokens.c.id == bindparam("p_id"))
GET_TOKEN_FOR_UPDATE: Final = GET_TOKEN.with_for_update()

_booking = bookings.alias("b")
OPEN_STATUSES: Final = sorted(status.value for status in OPEN_BOOKING_STATUSES)
# §5.1 and §5.4 as a condition on the token row: live, and its booking (if any) open, at the
# token's revision and link generation (§8.4); a deleted booking matches nobody.
LIVE_TOKEN: Final = (
    tokens.c.invalidated == false(),
    tokens.c.used_at.is_(None),
    tokens.c.expires_at > bind_now(),
    or_(
        tokens.c.booking_id.is_(None),
        exists()
        .where(
            _booking.c.id == tokens.c.booking_id,
            _booking.c.status.in_(OPEN_STATUSES),
            or_(
                tokens.c.booking_revision.is_(None),
                _booking.c.revision == tokens.c.booking_revision,
            ),
            _booking.c.link_generation == tokens.c.link_generation,
        )
        .correlate(tokens),
    ),
)
# One conditional write: the row is re-checked under its lock, so of racing consumers exactly
# one matches.
CONSUME_TOKEN: Final = (
    update(tokens).where(tokens.c.id == bindparam("p_id"), *LIVE_TOKEN).values(used_at=bind_now())
)

# R1.4: an invalidated token keeps an earlier `used_at`, else gets the invalidation time.
_INVALIDATE_VALUES: Final[Mapping[str, Any]] = {
    "invalidated": true(),
    "invalidation_reason": bindparam("p_reason"),
    "used_at": func.coalesce(tokens.c.used_at, bind_now(), type_=UTCDateTime()),
}
INVALIDATE_TOKEN: Final = (
    update(tokens)
    .where(tokens.c.id == bindparam("p_id"), tokens.c.invalidated == false())
    .values(**_INVALIDATE_VALUES)
)
INVALIDATE_BY_BOOKING: Final = (
    update(tokens)
    .where(tokens.c.booking_id == bindparam("p_booking"), tokens.c.invalidated == false())
    .values(**_INVALIDATE_VALUES)
)
INVALIDATE_BY_BOOKING_RETURNING: Final = INVALIDATE_BY_BOOKING.returning(tokens.c.guest_id)

# Without UPDATE ... RETURNING (MariaDB, MySQL), and on SQLite where it is slower: lock (where
# FOR UPDATE exists) and count the rows first, then update exactly those (`id <= max id`: a
# token inserted after the count gets a larger id).
LOCK_AND_COUNT_BY_BOOKING: Final = (
    select(tokens.c.guest_id, func.count().label("n"), func.max(tokens.c.id).label("max_id"))
    .where(tokens.c.booking_id == bindparam("p_booking"), tokens.c.invalidated == false())
    .group_by(tokens.c.guest_id)
    .with_for_update()
)
INVALIDATE_BY_BOOKING_UP_TO: Final = INVALIDATE_BY_BOOKING.where(
    tokens.c.id <= bindparam("p_max_id")
)
_LIVE_FOR_GUEST: Final = and_(
    tokens.c.guest_id == bindparam("p_guest"),
    tokens.c.invalidated == false(),
    tokens.c.used_at.is_(None),
    tokens.c.expires_at > bind_now(),
)
INVALIDATE_LIVE_FOR_BOOKING: Final = (
    update(tokens)
    .where(_LIVE_FOR_GUEST, tokens.c.booking_id == bindparam("p_booking"))
    .values(**_INVALIDATE_VALUES)
)
INVALIDATE_LIVE_INBOX: Final = (
    update(tokens)
    .where(_LIVE_FOR_GUEST, tokens.c.booking_id.is_(None))
    .values(**_INVALIDATE_VALUES)
)
INVALIDATE_ALL_LIVE_OF_GUEST: Final = (
    update(tokens).where(_LIVE_FOR_GUEST).values(**_INVALIDATE_VALUES)
)
LIST_TOKENS_BY_BOOKING: Final = (
    select(*TOKEN_COLUMNS)
    .where(tokens.c.booking_id == bindparam("p_booking"))
    .order_by(tokens.c.id)
)
_EXPIRED_BEFORE: Final = tokens.c.expires_at < bindparam("p_before", type_=UTCDateTime())
# The inner LIMIT sits in a derived table: MariaDB/MySQL refuse LIMIT directly inside an IN
# subquery, and refuse a subquery on the table being deleted from unless it is materialized.
_doomed = (
    select(tokens.c.id)
    .where(_EXPIRED_BEFORE)
    .order_by(tokens.c.id)
    .limit(bindparam("p_limit", type_=Integer()))
    .subquery("doomed")
)
PURGE_EXPIRED: Final = delete(tokens).where(tokens.c.id.in_(select(_doomed.c.id)))
COUNT_EXPIRED: Final = select(func.count()).select_from(tokens).where(_EXPIRED_BEFORE)


_ONE: Final = literal_column("1", Integer())
_ZERO: Final = literal_column("0", Integer())


def _count_when(*conditions: Any) -> Any:
    return func.coalesce(func.sum(case((and_(*conditions), _ONE), else_=_ZERO)), _ZERO)


_not_invalidated = tokens.c.invalidated == false()
# The four classes are exclusive: invalidated, else used, else expired, else live.
TOKEN_STATS: Final = select(
    _count_when(
        _not_invalidated, tokens.c.used_at.is_(None), tokens.c.expires_at > bind_now()
    ).label("live"),
    _count_when(
        _not_invalidated, tokens.c.used_at.is_(None), tokens.c.expires_at <= bind_now()
    ).label("expired"),
    _count_when(_not_invalidated, tokens.c.used_at.is_not(None)).label("used"),
    _count_when(tokens.c.invalidated == true()).label("invalidated"),
).select_from(tokens)
INVALIDATIONS_BY_REASON: Final = (
    select(tokens.c.invalidation_reason.label("reason"), func.count().label("n"))
    .where(tokens.c.invalidated == true())
    .group_by(tokens.c.invalidation_reason)
)

# --- Ratings, incidents and the audit log -----------------------------------------------

INSERT_RATING: Final = insert(ratings)
GET_RATING_BY_BOOKING: Final = select(*RATING_COLUMNS).where(
    ratings.c.booking_id == bindparam("p_booking")
)

INSERT_INCIDENT: Final = insert(incidents)
LIST_INCIDENTS_BY_UID: Final = (
    select(*INCIDENT_COLUMNS)
    .where(incidents.c.booking_uid == bindparam("p_uid"))
    .order_by(incidents.c.id)
)

INSERT_AUDIT: Final = insert(audit_log)
_audit_newest_first = (
    select(*AUDIT_COLUMNS)
    .order_by(audit_log.c.created_at.desc(), audit_log.c.id.desc())
    .limit(bindparam("p_limit", type_=Integer()))
)
_by_resource = audit_log.c.resource_id == bindparam("p_resource")
_by_guest = audit_log.c.guest_id == bindparam("p_guest")
# One statement per combination of filters, keyed by (booking given, guest given).
LIST_AUDIT: Final[Mapping[tuple[bool, bool], Executable]] = {
    (False, False): _audit_newest_first,
    (True, False): _audit_newest_first.where(_by_resource),
    (False, True): _audit_newest_first.where(_by_guest),
    (True, True): _audit_newest_first.where(_by_resource, _by_guest),
}
# Issue 12.2: one operation's entries, through the operation_id index.
AUDIT_OF_OPERATION: Final = (
    select(*AUDIT_COLUMNS)
    .where(audit_log.c.operation_id == bindparam("p_operation"))
    .order_by(audit_log.c.id)
)
# §9.4: the guest's links issued on one path since an instant, found through the guest_id
# index (the JSON path is read from the guest's rows only).
COUNT_LINKS_ISSUED: Final = (
    select(func.count())
    .select_from(audit_log)
    .where(
        _by_guest,
        audit_log.c.action == str(AuditAction.CREATE_TOKEN),
        audit_log.c.created_at > bindparam("p_since", type_=UTCDateTime()),
        audit_log.c.metadata["path"].as_string() == bindparam("p_path"),
    )
)


__all__ = [
    "AUDIT_OF_OPERATION",
    "CLAIM_REQUEST_SLOT",
    "CONSUME_TOKEN",
    "COUNT_EXPIRED",
    "COUNT_LINKS_ISSUED",
    "GET_BOOKING",
    "GET_BOOKING_BY_UID",
    "GET_BOOKING_FOR_UPDATE",
    "GET_GUEST",
    "GET_GUEST_BY_EMAIL",
    "GET_RATING_BY_BOOKING",
    "GET_TOKEN",
    "GET_TOKEN_FOR_UPDATE",
    "INSERT_AUDIT",
    "INSERT_BOOKING",
    "INSERT_GUEST",
    "INSERT_INCIDENT",
    "INSERT_RATING",
    "INSERT_TOKEN",
    "INVALIDATE_ALL_LIVE_OF_GUEST",
    "INVALIDATE_BY_BOOKING",
    "INVALIDATE_BY_BOOKING_RETURNING",
    "INVALIDATE_BY_BOOKING_UP_TO",
    "INVALIDATE_LIVE_FOR_BOOKING",
    "INVALIDATE_LIVE_INBOX",
    "INVALIDATE_TOKEN",
    "INVALIDATIONS_BY_REASON",
    "LIST_AUDIT",
    "LIST_INCIDENTS_BY_UID",
    "LIST_TOKENS_BY_BOOKING",
    "LIVE_TOKEN",
    "LOCK_AND_COUNT_BY_BOOKING",
    "LOOKUP_TOKEN",
    "OPEN_STATUSES",
    "PURGE_EXPIRED",
    "REVOKE_BOOKING_LINKS",
    "SET_BLOCKED",
    "SET_BLOCKED_RETURNING",
    "SLOT_FREE",
    "TOKEN_STATS",
    "UPDATE_BOOKING",
    "bind_now",
]
