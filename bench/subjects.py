"""The two subjects measured on every storage: ours (magiclink's services) and the floor
(the minimal raw-driver statements for the same work: one round trip each, autocommit).

Each subject answers `prepare(op, k)` — the data of `k` calls, made outside the timed
region — and `runner(op)` — the function timed on each of those items. `check(op, item,
result)` says whether one call did its work (used on untimed calls only).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from storages import BookingRef, IssueItem, KnownToken, Preparer, Seeder, World

from magiclink import InvalidationReason, Requester, Settings, build_services
from magiclink.adapters.memory import InMemoryNotifier
from magiclink.ports import UnitOfWork

INVALIDATION_SIZES: Final = (1, 10, 100, 1_000)
OPS: Final = (
    "issue",
    "verify",
    "consume",
    *(f"invalidate-{n}" for n in INVALIDATION_SIZES),
    "cancel",
)
CANCEL_TOKENS: Final = 1  # a booking's first link, mailed when it was booked
TTL: Final = timedelta(minutes=15)

Runner = Callable[[Any], Any]


def invalidation_size(op: str) -> int | None:
    """N of `invalidate-N`, else None."""
    prefix, _, size = op.partition("-")
    return int(size) if prefix == "invalidate" else None


class Subject:
    """What both sides share: the data of the timed calls."""

    label: str

    def __init__(self, seeder: Seeder, world: World) -> None:
        self.prep = Preparer(seeder, world)

    def prepare(self, op: str, k: int) -> list[Any]:
        """The items of `k` calls of `op` (made, and written, now: not timed)."""
        if op == "issue":
            return self.prep.issue_items(k)
        if op == "verify":
            return self.prep.pool(k)
        if op == "consume":
            return self.prep.fresh_tokens(k)
        if op == "cancel":
            return self.prep.bookings_with_tokens(k, CANCEL_TOKENS)
        size = invalidation_size(op)
        if size is None:
            raise ValueError(f"unknown operation {op!r}")
        return self.prep.bookings_with_tokens(k, size)

    def runner(self, op: str) -> Runner:
        raise NotImplementedError

    def check(self, op: str, item: Any, result: Any) -> bool:
        raise NotImplementedError


class Ours(Subject):
    """magiclink's services over a unit of work, as a host calls them.

    * issue: `request_inbox_link(email)` of an existing guest, no booking, with
      `Settings(request_interval=0)` so the rate limit never trips (its conditional UPDATE of
      the guest still runs: that is the work the limit costs);
    * verify / consume: `verify_token(raw)` / `consume_token(raw)` of a live booking link;
    * invalidate-N: `invalidate_tokens_by_booking_id(booking_id, "booking_cancelled")`;
    * cancel: `BookingService.cancel_session(...)` by the mentor, the booking holding one link.

    System clock, no metrics (NullMetrics), logging left unconfigured (INFO not enabled).
    """

    label = "ours"

    def __init__(self, uow: UnitOfWork, seeder: Seeder, world: World) -> None:
        super().__init__(seeder, world)
        settings = Settings(request_interval=timedelta(0), max_links_per_hour=None)
        services = build_services(uow, notifier=InMemoryNotifier(), settings=settings)
        self.guests, self.bookings = services.guests, services.bookings

    def runner(self, op: str) -> Runner:
        guests, bookings = self.guests, self.bookings
        reason = InvalidationReason.BOOKING_CANCELLED
        if op == "issue":
            return lambda item: guests.request_inbox_link(item.guest.email)
        if op == "verify":
            return lambda token: guests.verify_token(token.raw)
        if op == "consume":
            return lambda token: guests.consume_token(token.raw)
        if op == "cancel":
            return lambda b: bookings.cancel_session(
                b.id, "bench", "mentor", Requester(user_id=b.mentor_id)
            )
        return lambda b: guests.invalidate_tokens_by_booking_id(b.id, reason)

    def check(self, op: str, item: Any, result: Any) -> bool:
        size = invalidation_size(op)
        if size is not None:
            return bool(result == size)
        if op == "issue":
            return bool(result.guest_id == item.guest.id)
        if op in ("verify", "consume"):
            return bool(result.token.token_hash == item.hash)
        return bool(result.status == "cancelled")


# --- The floor -------------------------------------------------------------------------------

_LOOKUP_COLUMNS: Final = (
    "t.id, t.token_hash, t.guest_id, t.booking_id, t.booking_revision, t.expires_at, "
    "t.used_at, t.invalidated, t.invalidation_reason, t.created_at, "
    "g.id, g.normalized_email, g.blocked, g.last_request_at, g.created_at, "
    "b.status, b.revision"
)


def floor_sql(dialect: str) -> dict[str, str]:
    """The floor's statements in the driver's parameter style.

    verify: the one indexed SELECT our lookup also issues (token JOIN guest LEFT JOIN
    booking, by the unique hash), the same 17 columns. consume: one conditional UPDATE by
    hash carrying the same rules (live, booking open and not moved). issue: one INSERT.
    invalidate: one UPDATE by booking. cancel: the booking's UPDATE, then its tokens'.
    """
    p = "?" if dialect == "sqlite" else "%s"
    false = "0" if dialect == "sqlite" else "false"
    true = "1" if dialect == "sqlite" else "true"
    return {
        "verify": (
            f"SELECT {_LOOKUP_COLUMNS} FROM magiclink_tokens t "
            "JOIN magiclink_guests g ON g.id = t.guest_id "
            "LEFT OUTER JOIN magiclink_bookings b ON b.id = t.booking_id "
            f"WHERE t.token_hash = {p}"
        ),
        "consume": (
            f"UPDATE magiclink_tokens SET used_at = {p} "
            f"WHERE token_hash = {p} AND invalidated = {false} AND used_at IS NULL "
            f"AND expires_at > {p} AND (booking_id IS NULL OR EXISTS ("
            "SELECT 1 FROM magiclink_bookings b WHERE b.id = magiclink_tokens.booking_id "
            "AND b.status IN ('completed', 'scheduled') AND (magiclink_tokens.booking_revision "
            "IS NULL OR b.revision = magiclink_tokens.booking_revision)))"
        ),
        "issue": (
            "INSERT INTO magiclink_tokens (token_hash, guest_id, booking_id, booking_revision, "
            "expires_at, used_at, invalidated, invalidation_reason, created_at) "
            f"VALUES ({p}, {p}, NULL, NULL, {p}, NULL, {false}, NULL, {p})"
        ),
        "invalidate": (
            f"UPDATE magiclink_tokens SET invalidated = {true}, invalidation_reason = {p}, "
            f"used_at = COALESCE(used_at, {p}) WHERE booking_id = {p} AND invalidated = {false}"
        ),
        "cancel": f"UPDATE magiclink_bookings SET status = 'cancelled' WHERE id = {p}",
    }


# Every other operation: 1 statement, one round trip, no BEGIN/COMMIT (autocommit); cancel:
# its 2 statements inside BEGIN ... COMMIT.
FLOOR_STATEMENTS: Final = {"cancel": 2}


def _autocommit(connection: Any, dialect: str) -> None:
    """Put the held connection in autocommit mode (ending what seeding left open)."""
    connection.commit()
    if dialect == "sqlite":
        connection.isolation_level = None  # sqlite3: no implicit BEGIN before a write
    else:
        connection.autocommit = True  # psycopg 3: no BEGIN before the statement


def _sqlite_time(moment: datetime) -> str:
    # The text SQLAlchemy stores for a DATETIME on SQLite: naive UTC, with microseconds.
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def _aware(moment: datetime) -> datetime:
    return moment


class Floor(Subject):
    """The raw driver (sqlite3 or psycopg 3) on a held connection in autocommit mode: one
    reused cursor, each single-statement operation ONE round trip with no BEGIN/COMMIT around
    it (the true floor a user compares against); cancel, two statements, in an explicit
    BEGIN ... COMMIT. The current time is read per call, as ours does."""

    label = "floor"

    def __init__(self, connection: Any, dialect: str, seeder: Seeder, world: World) -> None:
        super().__init__(seeder, world)
        _autocommit(connection, dialect)
        self.connection = connection
        self.cursor = connection.cursor()
        self.sql = floor_sql(dialect)
        self.time = _sqlite_time if dialect == "sqlite" else _aware

    def runner(self, op: str) -> Runner:
        cursor, sql, time = self.cursor, self.sql, self.time
        execute = cursor.execute
        reason = str(InvalidationReason.BOOKING_CANCELLED)
        if op == "verify":
            statement = sql["verify"]

            def verify(token: KnownToken) -> Any:
                execute(statement, (token.hash,))
                row = cursor.fetchone()
                return row

            return verify
        if op == "consume":
            statement = sql["consume"]

            def consume(token: KnownToken) -> int:
                now = time(datetime.now(UTC))
                execute(statement, (now, token.hash, now))
                changed = int(cursor.rowcount)
                return changed

            return consume
        if op == "issue":
            statement = sql["issue"]

            def issue(item: IssueItem) -> int:
                now = datetime.now(UTC)
                execute(statement, (item.hash, item.guest.id, time(now + TTL), time(now)))
                changed = int(cursor.rowcount)
                return changed

            return issue
        invalidate = sql["invalidate"]
        if op == "cancel":
            close = sql["cancel"]

            def cancel(booking: BookingRef) -> int:
                execute("BEGIN")
                execute(close, (booking.id,))
                execute(invalidate, (reason, time(datetime.now(UTC)), booking.id))
                changed = int(cursor.rowcount)
                execute("COMMIT")
                return changed

            return cancel

        def invalidate_booking(booking: BookingRef) -> int:
            execute(invalidate, (reason, time(datetime.now(UTC)), booking.id))
            changed = int(cursor.rowcount)
            return changed

        return invalidate_booking

    def check(self, op: str, item: Any, result: Any) -> bool:
        if op == "verify":
            return result is not None and result[1] == item.hash
        size = invalidation_size(op)
        expected = size if size is not None else CANCEL_TOKENS if op == "cancel" else 1
        return bool(result == expected)
