"""SQLAlchemy Core implementations of the repository ports.

Every statement is built once, here at module level, with named `bindparam()`s: SQLAlchemy
then compiles each one once per dialect and serves it from its compiled cache afterwards.
Rows are translated explicitly into the frozen domain records (strings back to `StrEnum`
members; times come back timezone-aware UTC from `UTCDateTime`).

Each repository method issues a fixed number of statements, whatever the number of tokens or
guests involved (R10.5); the counts are listed in docs and checked by the integration tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import (
    Connection,
    CursorResult,
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
from sqlalchemy.exc import IntegrityError

from magiclink.adapters.sqlalchemy._errors import translating
from magiclink.adapters.sqlalchemy._tables import (
    UTCDateTime,
    audit_log,
    bookings,
    guests,
    incidents,
    ratings,
    tokens,
)
from magiclink.domain._enums import (
    OPEN_BOOKING_STATUSES,
    AuditAction,
    BookingStatus,
    IncidentType,
    InvalidationReason,
)
from magiclink.domain._errors import StorageError
from magiclink.domain._records import (
    AuditEntry,
    Booking,
    Guest,
    Incident,
    InvalidationResult,
    MagicLinkToken,
    NewAuditEntry,
    Rating,
    TokenLookup,
)
from magiclink.ports._repositories import (
    AuditLog,
    BookingRepository,
    GuestRepository,
    IncidentRepository,
    RatingRepository,
    TokenRepository,
    TokenStats,
)

Row = Sequence[Any]


class ConnectionSource(Protocol):
    """What a repository needs from its transaction."""

    @property
    def guard_inserts(self) -> bool:
        """True when a failed statement aborts the whole transaction (PostgreSQL): inserts
        that may hit a meaningful unique constraint then run inside a SAVEPOINT."""
        ...

    def connection(self) -> Connection:
        """The transaction's connection, with its database transaction begun."""
        ...


def _now() -> Any:
    return bindparam("p_now", type_=UTCDateTime())


# --- Columns and row translation ---------------------------------------------------------

GUEST_COLUMNS: Final = (
    guests.c.id,
    guests.c.normalized_email,
    guests.c.blocked,
    guests.c.last_request_at,
    guests.c.created_at,
)
BOOKING_COLUMNS: Final = (
    bookings.c.id,
    bookings.c.uid,
    bookings.c.mentor_id,
    bookings.c.guest_email,
    bookings.c.start_time,
    bookings.c.end_time,
    bookings.c.status,
    bookings.c.revision,
    bookings.c.link_generation,
)
TOKEN_COLUMNS: Final = (
    tokens.c.id,
    tokens.c.token_hash,
    tokens.c.guest_id,
    tokens.c.booking_id,
    tokens.c.booking_revision,
    tokens.c.expires_at,
    tokens.c.used_at,
    tokens.c.invalidated,
    tokens.c.invalidation_reason,
    tokens.c.created_at,
    tokens.c.link_generation,
)
AUDIT_COLUMNS: Final = (
    audit_log.c.id,
    audit_log.c.guest_id,
    audit_log.c.endpoint,
    audit_log.c.action,
    audit_log.c.resource_id,
    audit_log.c.success,
    audit_log.c.metadata,
    audit_log.c.created_at,
    audit_log.c.operation_id,
)
RATING_COLUMNS: Final = (
    ratings.c.id,
    ratings.c.booking_id,
    ratings.c.student_profile_id,
    ratings.c.rating,
    ratings.c.feedback,
    ratings.c.created_at,
)
INCIDENT_COLUMNS: Final = (
    incidents.c.id,
    incidents.c.booking_uid,
    incidents.c.booking_id,
    incidents.c.student_profile_id,
    incidents.c.type,
    incidents.c.description,
    incidents.c.reported_by_user_id,
    incidents.c.created_at,
)


def guest_from_row(row: Row, at: int = 0) -> Guest:
    """The `Guest` in `row[at:]`, laid out as `GUEST_COLUMNS`."""
    return Guest(
        id=row[at],
        normalized_email=row[at + 1],
        blocked=bool(row[at + 2]),
        last_request_at=row[at + 3],
        created_at=row[at + 4],
    )


def booking_from_row(row: Row) -> Booking:
    """The `Booking` in `row`, laid out as `BOOKING_COLUMNS`."""
    return Booking(
        id=row[0],
        uid=row[1],
        mentor_id=row[2],
        guest_email=row[3],
        start_time=row[4],
        end_time=row[5],
        status=BookingStatus(row[6]),
        revision=row[7],
        link_generation=row[8],
    )


def token_from_row(row: Row) -> MagicLinkToken:
    """The `MagicLinkToken` in `row[:11]`, laid out as `TOKEN_COLUMNS`."""
    reason = row[8]
    return MagicLinkToken(
        id=row[0],
        token_hash=row[1],
        guest_id=row[2],
        booking_id=row[3],
        booking_revision=row[4],
        expires_at=row[5],
        used_at=row[6],
        invalidated=bool(row[7]),
        invalidation_reason=None if reason is None else InvalidationReason(reason),
        created_at=row[9],
        link_generation=row[10],
    )


def audit_from_row(row: Row) -> AuditEntry:
    """The `AuditEntry` in `row`, laid out as `AUDIT_COLUMNS`."""
    return AuditEntry(
        id=row[0],
        guest_id=row[1],
        endpoint=row[2],
        action=row[3],
        resource_id=row[4],
        success=bool(row[5]),
        metadata=row[6],
        created_at=row[7],
        operation_id=row[8],
    )


def rating_from_row(row: Row) -> Rating:
    """The `Rating` in `row`, laid out as `RATING_COLUMNS`."""
    return Rating(
        id=row[0],
        booking_id=row[1],
        student_profile_id=row[2],
        rating=row[3],
        feedback=row[4],
        created_at=row[5],
    )


def incident_from_row(row: Row) -> Incident:
    """The `Incident` in `row`, laid out as `INCIDENT_COLUMNS`."""
    return Incident(
        id=row[0],
        booking_uid=row[1],
        booking_id=row[2],
        student_profile_id=row[3],
        type=IncidentType(row[4]),
        description=row[5],
        reported_by_user_id=row[6],
        created_at=row[7],
    )


# --- Statements ---------------------------------------------------------------------------

GET_GUEST: Final = select(*GUEST_COLUMNS).where(guests.c.id == bindparam("p_id"))
GET_GUEST_BY_EMAIL: Final = select(*GUEST_COLUMNS).where(
    guests.c.normalized_email == bindparam("p_email")
)
INSERT_GUEST: Final = insert(guests)
CLAIM_REQUEST_SLOT: Final = (
    update(guests)
    .where(
        guests.c.id == bindparam("p_id"),
        or_(
            guests.c.last_request_at.is_(None),
            guests.c.last_request_at <= bindparam("p_not_after", type_=UTCDateTime()),
        ),
    )
    .values(last_request_at=_now())
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
    )
)
REVOKE_BOOKING_LINKS: Final = (
    update(bookings)
    .where(bookings.c.id == bindparam("p_id"))
    .values(link_generation=bookings.c.link_generation + 1)
)

INSERT_TOKEN: Final = insert(tokens)
# R7 in one indexed read: the token, its guest, and its booking's state if it still exists
# (status, revision, link generation from `_LOOKUP_BOOKING_AT` on).
LOOKUP_TOKEN: Final = (
    select(
        *TOKEN_COLUMNS,
        *GUEST_COLUMNS,
        bookings.c.status,
        bookings.c.revision,
        bookings.c.link_generation,
    )
    .select_from(
        tokens.join(guests, guests.c.id == tokens.c.guest_id).outerjoin(
            bookings, bookings.c.id == tokens.c.booking_id
        )
    )
    .where(tokens.c.token_hash == bindparam("p_hash"))
)
_LOOKUP_GUEST_AT: Final = len(TOKEN_COLUMNS)
_LOOKUP_BOOKING_AT: Final = len(TOKEN_COLUMNS) + len(GUEST_COLUMNS)
GET_TOKEN: Final = select(*TOKEN_COLUMNS).where(tokens.c.id == bindparam("p_id"))
GET_TOKEN_FOR_UPDATE: Final = GET_TOKEN.with_for_update()

_booking = bookings.alias("b")
# §5.1 and §5.4 in one conditional write: the row is re-checked under its lock, so of racing
# consumers exactly one matches; a closed, moved, revoked (§8.4) or deleted booking matches
# nobody.
CONSUME_TOKEN: Final = (
    update(tokens)
    .where(
        tokens.c.id == bindparam("p_id"),
        tokens.c.invalidated == false(),
        tokens.c.used_at.is_(None),
        tokens.c.expires_at > _now(),
        or_(
            tokens.c.booking_id.is_(None),
            exists()
            .where(
                _booking.c.id == tokens.c.booking_id,
                _booking.c.status.in_(sorted(status.value for status in OPEN_BOOKING_STATUSES)),
                or_(
                    tokens.c.booking_revision.is_(None),
                    _booking.c.revision == tokens.c.booking_revision,
                ),
                _booking.c.link_generation == tokens.c.link_generation,
            )
            .correlate(tokens),
        ),
    )
    .values(used_at=_now())
)

# R1.4: an invalidated token keeps an earlier `used_at`, else gets the invalidation time.
_INVALIDATE_VALUES: Final[Mapping[str, Any]] = {
    "invalidated": true(),
    "invalidation_reason": bindparam("p_reason"),
    "used_at": func.coalesce(tokens.c.used_at, _now(), type_=UTCDateTime()),
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
    select(tokens.c.guest_id, func.count(), func.max(tokens.c.id))
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
    tokens.c.expires_at > _now(),
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
# The four classes are exclusive, in this order: invalidated, used, expired, live.
TOKEN_STATS: Final = select(
    _count_when(_not_invalidated, tokens.c.used_at.is_(None), tokens.c.expires_at > _now()),
    _count_when(_not_invalidated, tokens.c.used_at.is_(None), tokens.c.expires_at <= _now()),
    _count_when(_not_invalidated, tokens.c.used_at.is_not(None)),
    _count_when(tokens.c.invalidated == true()),
).select_from(tokens)
INVALIDATIONS_BY_REASON: Final = (
    select(tokens.c.invalidation_reason, func.count())
    .where(tokens.c.invalidated == true())
    .group_by(tokens.c.invalidation_reason)
)

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


# --- Repositories -------------------------------------------------------------------------


class _SqlAlchemyRepository:
    """A repository bound to one transaction."""

    def __init__(self, source: ConnectionSource) -> None:
        self._source = source

    def _insert_guarded(self, statement: Executable, params: Mapping[str, Any]) -> int:
        """Insert one row and return its id, keeping the transaction usable if it fails.

        On PostgreSQL a failed statement aborts the whole transaction, so the insert runs in a
        SAVEPOINT; SQLite and MariaDB roll back only the failed statement by themselves.
        """
        conn = self._source.connection()
        if not self._source.guard_inserts:
            return _new_id(conn.execute(statement, params))
        with conn.begin_nested():
            return _new_id(conn.execute(statement, params))


def _new_id(result: CursorResult[Any]) -> int:
    primary_key = result.inserted_primary_key
    if primary_key is None or primary_key[0] is None:
        raise StorageError("Storage error: the database returned no id for a new row")
    return int(primary_key[0])


class SqlAlchemyGuestRepository(_SqlAlchemyRepository, GuestRepository):
    """Guests in `magiclink_guests`."""

    @translating
    def get(self, guest_id: int) -> Guest | None:
        """The guest with this id, or None (one SELECT)."""
        row = self._source.connection().execute(GET_GUEST, {"p_id": guest_id}).first()
        return None if row is None else guest_from_row(row)

    @translating
    def get_by_email(self, normalized_email: str) -> Guest | None:
        """The guest with this normalized e-mail, or None (one SELECT)."""
        row = (
            self._source.connection()
            .execute(GET_GUEST_BY_EMAIL, {"p_email": normalized_email})
            .first()
        )
        return None if row is None else guest_from_row(row)

    @translating
    def get_or_create(
        self, normalized_email: str, *, now: datetime, last_request_at: datetime | None
    ) -> tuple[Guest, bool]:
        """The guest with this e-mail and whether this call created it.

        A SELECT first (the common case: the guest exists); else an INSERT in a SAVEPOINT.
        If a concurrent transaction created the same e-mail first, the INSERT fails on the
        unique e-mail, the savepoint is rolled back, and the winner is read and returned.
        """
        existing = self.get_by_email(normalized_email)
        if existing is not None:
            return existing, False
        conn = self._source.connection()
        params = {
            "normalized_email": normalized_email,
            "blocked": False,
            "last_request_at": last_request_at,
            "created_at": now,
        }
        try:
            # Always a savepoint here: losing this race is expected, not an error.
            with conn.begin_nested():
                guest_id = _new_id(conn.execute(INSERT_GUEST, params))
        except IntegrityError:
            winner = self.get_by_email(normalized_email)
            if winner is None:
                raise  # not the unique e-mail after all: translated as a storage error
            return winner, False
        guest = Guest(
            id=guest_id,
            normalized_email=normalized_email,
            blocked=False,
            last_request_at=last_request_at,
            created_at=now,
        )
        return guest, True

    @translating
    def claim_request_slot(self, guest_id: int, *, now: datetime, not_after: datetime) -> bool:
        """Set `last_request_at = now` if NULL or `<= not_after` (one conditional UPDATE)."""
        result = self._source.connection().execute(
            CLAIM_REQUEST_SLOT, {"p_id": guest_id, "p_now": now, "p_not_after": not_after}
        )
        return result.rowcount == 1

    @translating
    def set_blocked(self, guest_id: int, blocked: bool) -> Guest | None:
        """Set `blocked`; the updated guest or None (UPDATE ... RETURNING, else UPDATE+SELECT)."""
        conn = self._source.connection()
        params = {"p_id": guest_id, "p_blocked": blocked}
        if conn.dialect.update_returning:
            row = conn.execute(SET_BLOCKED_RETURNING, params).first()
            return None if row is None else guest_from_row(row)
        if conn.execute(SET_BLOCKED, params).rowcount == 0:
            return None
        return self.get(guest_id)


class SqlAlchemyBookingRepository(_SqlAlchemyRepository, BookingRepository):
    """Bookings in `magiclink_bookings`."""

    @translating
    def add(
        self,
        *,
        uid: str,
        mentor_id: int,
        guest_email: str,
        start_time: datetime,
        end_time: datetime,
        status: BookingStatus,
        revision: int,
    ) -> Booking:
        """Store a new booking (one INSERT); a duplicate uid raises `InvalidInput`."""
        booking_id = self._insert_guarded(
            INSERT_BOOKING,
            {
                "uid": uid,
                "mentor_id": mentor_id,
                "guest_email": guest_email,
                "start_time": start_time,
                "end_time": end_time,
                "status": str(status),
                "revision": revision,
                "link_generation": 0,
            },
        )
        return Booking(
            id=booking_id,
            uid=uid,
            mentor_id=mentor_id,
            guest_email=guest_email,
            start_time=start_time,
            end_time=end_time,
            status=BookingStatus(status),
            revision=revision,
        )

    @translating
    def get(self, booking_id: int, *, for_update: bool = False) -> Booking | None:
        """The booking or None (one SELECT, `FOR UPDATE` when asked, except on SQLite)."""
        statement = GET_BOOKING_FOR_UPDATE if for_update else GET_BOOKING
        row = self._source.connection().execute(statement, {"p_id": booking_id}).first()
        return None if row is None else booking_from_row(row)

    @translating
    def get_by_uid(self, uid: str) -> Booking | None:
        """The booking with this uid, or None (one SELECT)."""
        row = self._source.connection().execute(GET_BOOKING_BY_UID, {"p_uid": uid}).first()
        return None if row is None else booking_from_row(row)

    @translating
    def update(self, booking: Booking) -> None:
        """Write status, times and revision (one UPDATE); an unknown id changes nothing."""
        self._source.connection().execute(
            UPDATE_BOOKING,
            {
                "p_id": booking.id,
                "p_status": str(booking.status),
                "p_start": booking.start_time,
                "p_end": booking.end_time,
                "p_revision": booking.revision,
            },
        )

    @translating
    def revoke_links(self, booking_id: int) -> None:
        """Advance the booking's link generation (one UPDATE, atomic in the database)."""
        self._source.connection().execute(REVOKE_BOOKING_LINKS, {"p_id": booking_id})


class SqlAlchemyTokenRepository(_SqlAlchemyRepository, TokenRepository):
    """Tokens (hashes only) in `magiclink_tokens`."""

    @translating
    def add(
        self,
        *,
        token_hash: str,
        guest_id: int,
        booking_id: int | None,
        booking_revision: int | None,
        expires_at: datetime,
        created_at: datetime,
        link_generation: int = 0,
    ) -> MagicLinkToken:
        """Store a new, live token (one INSERT)."""
        token_id = _new_id(
            self._source.connection().execute(
                INSERT_TOKEN,
                {
                    "token_hash": token_hash,
                    "guest_id": guest_id,
                    "booking_id": booking_id,
                    "booking_revision": booking_revision,
                    "expires_at": expires_at,
                    "used_at": None,
                    "invalidated": False,
                    "invalidation_reason": None,
                    "created_at": created_at,
                    "link_generation": link_generation,
                },
            )
        )
        return MagicLinkToken(
            id=token_id,
            token_hash=token_hash,
            guest_id=guest_id,
            booking_id=booking_id,
            booking_revision=booking_revision,
            expires_at=expires_at,
            used_at=None,
            invalidated=False,
            invalidation_reason=None,
            created_at=created_at,
            link_generation=link_generation,
        )

    @translating
    def lookup(self, token_hash: str) -> TokenLookup | None:
        """Token, guest and booking state in one SELECT (token JOIN guest LEFT JOIN booking)."""
        row = self._source.connection().execute(LOOKUP_TOKEN, {"p_hash": token_hash}).first()
        if row is None:
            return None
        status = row[_LOOKUP_BOOKING_AT]
        return TokenLookup(
            token=token_from_row(row),
            guest=guest_from_row(row, _LOOKUP_GUEST_AT),
            booking_status=None if status is None else BookingStatus(status),
            booking_revision=row[_LOOKUP_BOOKING_AT + 1],
            booking_link_generation=row[_LOOKUP_BOOKING_AT + 2],
        )

    @translating
    def get(self, token_id: int) -> MagicLinkToken | None:
        """The token with this id, or None (one SELECT)."""
        row = self._source.connection().execute(GET_TOKEN, {"p_id": token_id}).first()
        return None if row is None else token_from_row(row)

    @translating
    def consume(self, token_id: int, *, now: datetime) -> bool:
        """Mark the token used if it is live at `now` (one conditional UPDATE)."""
        result = self._source.connection().execute(CONSUME_TOKEN, {"p_id": token_id, "p_now": now})
        return result.rowcount == 1

    @translating
    def invalidate(
        self, token_id: int, *, reason: InvalidationReason, now: datetime
    ) -> MagicLinkToken | None:
        """Invalidate one token; the token as it was, or None (SELECT FOR UPDATE + UPDATE)."""
        conn = self._source.connection()
        row = conn.execute(GET_TOKEN_FOR_UPDATE, {"p_id": token_id}).first()
        if row is None:
            return None
        before = token_from_row(row)
        if before.invalidated:
            return None
        result = conn.execute(
            INVALIDATE_TOKEN, {"p_id": token_id, "p_reason": str(reason), "p_now": now}
        )
        return before if result.rowcount == 1 else None

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
        conn = self._source.connection()
        params: dict[str, Any] = {"p_booking": booking_id, "p_reason": str(reason), "p_now": now}
        if conn.dialect.update_returning and conn.dialect.name != "sqlite":
            guest_ids = conn.execute(INVALIDATE_BY_BOOKING_RETURNING, params).scalars()
            return InvalidationResult(per_guest=dict(Counter(guest_ids)))
        counts = conn.execute(LOCK_AND_COUNT_BY_BOOKING, params).all()
        if not counts:
            return InvalidationResult(per_guest={})
        params["p_max_id"] = max(row[2] for row in counts)
        conn.execute(INVALIDATE_BY_BOOKING_UP_TO, params)
        return InvalidationResult(per_guest={row[0]: int(row[1]) for row in counts})

    @translating
    def invalidate_live(
        self,
        *,
        guest_id: int,
        booking_id: int | None,
        reason: InvalidationReason,
        now: datetime,
    ) -> int:
        """Invalidate the guest's live tokens for this booking, or inbox links (one UPDATE)."""
        params = {"p_guest": guest_id, "p_reason": str(reason), "p_now": now}
        if booking_id is None:
            statement = INVALIDATE_LIVE_INBOX
        else:
            statement = INVALIDATE_LIVE_FOR_BOOKING
            params["p_booking"] = booking_id
        return int(self._source.connection().execute(statement, params).rowcount)

    @translating
    def invalidate_all_live(
        self, *, guest_id: int, reason: InvalidationReason, now: datetime
    ) -> int:
        """Invalidate the guest's live tokens, of any booking or none (one UPDATE)."""
        params = {"p_guest": guest_id, "p_reason": str(reason), "p_now": now}
        result = self._source.connection().execute(INVALIDATE_ALL_LIVE_OF_GUEST, params)
        return int(result.rowcount)

    @translating
    def list_by_booking(self, booking_id: int) -> list[MagicLinkToken]:
        """Every token of the booking, oldest first (one SELECT)."""
        rows = self._source.connection().execute(LIST_TOKENS_BY_BOOKING, {"p_booking": booking_id})
        return [token_from_row(row) for row in rows]

    @translating
    def purge_expired(self, *, expired_before: datetime, limit: int) -> int:
        """Delete at most `limit` tokens expired before `expired_before` (one DELETE)."""
        if limit <= 0:
            return 0
        result = self._source.connection().execute(
            PURGE_EXPIRED, {"p_before": expired_before, "p_limit": limit}
        )
        return int(result.rowcount)

    @translating
    def count_expired(self, *, expired_before: datetime) -> int:
        """How many tokens have `expires_at < expired_before` (one SELECT)."""
        count = (
            self._source.connection()
            .execute(COUNT_EXPIRED, {"p_before": expired_before})
            .scalar_one()
        )
        return int(count)

    @translating
    def stats(self, *, now: datetime) -> TokenStats:
        """Live, expired, used and invalidated counts, and invalidations by reason (two SELECTs)."""
        conn = self._source.connection()
        live, expired, used, invalidated = conn.execute(TOKEN_STATS, {"p_now": now}).one()
        by_reason = {str(reason): int(n) for reason, n in conn.execute(INVALIDATIONS_BY_REASON)}
        return TokenStats(
            live=int(live),
            expired=int(expired),
            used=int(used),
            invalidated=int(invalidated),
            invalidated_by_reason=by_reason,
        )


class SqlAlchemyRatingRepository(_SqlAlchemyRepository, RatingRepository):
    """Ratings in `magiclink_ratings`, unique per booking."""

    @translating
    def add(
        self,
        *,
        booking_id: int,
        student_profile_id: str,
        rating: int,
        feedback: str | None,
        created_at: datetime,
    ) -> Rating:
        """Store a rating (one INSERT); a second one for the booking raises `DuplicateRating`."""
        rating_id = self._insert_guarded(
            INSERT_RATING,
            {
                "booking_id": booking_id,
                "student_profile_id": student_profile_id,
                "rating": rating,
                "feedback": feedback,
                "created_at": created_at,
            },
        )
        return Rating(
            id=rating_id,
            booking_id=booking_id,
            student_profile_id=student_profile_id,
            rating=rating,
            feedback=feedback,
            created_at=created_at,
        )

    @translating
    def get_by_booking(self, booking_id: int) -> Rating | None:
        """The booking's rating, or None (one SELECT)."""
        row = (
            self._source.connection()
            .execute(GET_RATING_BY_BOOKING, {"p_booking": booking_id})
            .first()
        )
        return None if row is None else rating_from_row(row)


class SqlAlchemyIncidentRepository(_SqlAlchemyRepository, IncidentRepository):
    """Incident reports in `magiclink_incidents`."""

    @translating
    def add(
        self,
        *,
        booking_uid: str,
        booking_id: int | None,
        student_profile_id: str,
        type: IncidentType,
        description: str,
        reported_by_user_id: int | None,
        created_at: datetime,
    ) -> Incident:
        """Store an incident (one INSERT)."""
        incident_id = _new_id(
            self._source.connection().execute(
                INSERT_INCIDENT,
                {
                    "booking_uid": booking_uid,
                    "booking_id": booking_id,
                    "student_profile_id": student_profile_id,
                    "type": str(type),
                    "description": description,
                    "reported_by_user_id": reported_by_user_id,
                    "created_at": created_at,
                },
            )
        )
        return Incident(
            id=incident_id,
            booking_uid=booking_uid,
            booking_id=booking_id,
            student_profile_id=student_profile_id,
            type=IncidentType(type),
            description=description,
            reported_by_user_id=reported_by_user_id,
            created_at=created_at,
        )

    @translating
    def list_by_booking_uid(self, booking_uid: str) -> list[Incident]:
        """Incidents for this booking uid, oldest first (one SELECT)."""
        rows = self._source.connection().execute(LIST_INCIDENTS_BY_UID, {"p_uid": booking_uid})
        return [incident_from_row(row) for row in rows]


class SqlAlchemyAuditLog(_SqlAlchemyRepository, AuditLog):
    """The guest access log in `magiclink_audit_log`."""

    @translating
    def add_many(self, entries: Sequence[NewAuditEntry]) -> None:
        """Append the entries in one batched INSERT (executemany); nothing when empty."""
        if not entries:
            return
        self._source.connection().execute(
            INSERT_AUDIT,
            [
                {
                    "guest_id": entry.guest_id,
                    "endpoint": entry.endpoint,
                    "action": str(entry.action),
                    "resource_id": entry.resource_id,
                    "success": entry.success,
                    "metadata": dict(entry.metadata),
                    "created_at": entry.created_at,
                    "operation_id": entry.operation_id,
                }
                for entry in entries
            ],
        )

    @translating
    def list(
        self, *, booking_id: int | None = None, guest_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Entries newest first, filtered by booking (`resource_id`) and/or guest (one SELECT)."""
        if limit <= 0:
            return []
        statement = LIST_AUDIT[booking_id is not None, guest_id is not None]
        params: dict[str, Any] = {"p_limit": limit}
        if booking_id is not None:
            params["p_resource"] = str(booking_id)
        if guest_id is not None:
            params["p_guest"] = guest_id
        rows = self._source.connection().execute(statement, params)
        return [audit_from_row(row) for row in rows]

    @translating
    def by_operation(self, operation_id: str) -> Sequence[AuditEntry]:
        """The entries written with `operation_id`, in insertion order (one SELECT)."""
        rows = self._source.connection().execute(AUDIT_OF_OPERATION, {"p_operation": operation_id})
        return [audit_from_row(row) for row in rows]

    @translating
    def count_links_issued(self, guest_id: int, *, path: str, since: datetime) -> int:
        """The guest's `CREATE_TOKEN` entries of `path` after `since` (one SELECT COUNT)."""
        params = {"p_guest": guest_id, "p_path": path, "p_since": since}
        return int(self._source.connection().execute(COUNT_LINKS_ISSUED, params).scalar_one())


__all__ = [
    "ConnectionSource",
    "SqlAlchemyAuditLog",
    "SqlAlchemyBookingRepository",
    "SqlAlchemyGuestRepository",
    "SqlAlchemyIncidentRepository",
    "SqlAlchemyRatingRepository",
    "SqlAlchemyTokenRepository",
]
