"""What the SQL adapter must get right on every dialect, beyond the shared port contract:
time zones and precision, enum round-trips, transactions, and the no-RETURNING path."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from sqlalchemy import Engine, event

from magiclink import (
    Booking,
    BookingStatus,
    Incident,
    IncidentType,
    InvalidationReason,
    MagicLinkToken,
    StorageError,
)
from magiclink.adapters.sqlalchemy import SqlAlchemyTransaction, SqlAlchemyUnitOfWork, metadata
from magiclink.ports import UNSAVED_ID, NewAuditEntry
from magiclink.testing import hash_token
from tests.databases import count_statements, new_postgres_engine, sqlite_file_engine
from tests.integration.seed import NOW, TTL, seed_booking

bookings = metadata.tables["magiclink_bookings"]
guests = metadata.tables["magiclink_guests"]


def test_times_come_back_aware_utc_with_microseconds(any_engine: Engine) -> None:
    """§2: times are timezone-aware UTC on every dialect; microseconds survive the trip."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    paris = timezone(timedelta(hours=1))
    issued = datetime(2025, 3, 14, 16, 9, 26, 535897, tzinfo=paris)
    with uow.transaction() as tx:
        guest, _ = tx.guests.get_or_create("t@example.com", now=issued, last_request_at=issued)
        token = tx.tokens.add(
            MagicLinkToken.new(
                token_hash="f" * 64,
                guest_id=guest.id,
                booking_id=None,
                booking_revision=None,
                expires_at=issued + TTL,
                created_at=issued,
            )
        )
        tx.commit()
    with uow.transaction(readonly=True) as tx:
        stored = tx.tokens.get(token.id)
        again = tx.guests.get(guest.id)
    assert stored is not None and again is not None
    for value in (stored.created_at, stored.expires_at, again.created_at, again.last_request_at):
        assert value is not None
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert stored.created_at == issued
    assert stored.created_at.microsecond == 535897
    assert stored.created_at.hour == 15  # 16:09 in UTC+1 is stored and read as 15:09 UTC


def test_naive_datetime_is_refused_as_storage_error(any_engine: Engine) -> None:
    """§2: a naive datetime is never guessed into a zone (services refuse it earlier)."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    with uow.transaction() as tx, pytest.raises(StorageError):
        tx.guests.get_or_create("n@example.com", now=datetime(2025, 1, 1), last_request_at=None)


def test_enums_and_json_round_trip(any_engine: Engine) -> None:
    """Rows become the domain's StrEnum members and plain JSON objects."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    seeded = seed_booking(uow)
    with uow.transaction() as tx:
        incident = tx.incidents.add(
            Incident(
                id=UNSAVED_ID,
                booking_uid=seeded.booking.uid,
                booking_id=seeded.booking.id,
                student_profile_id="profile-1",
                type=IncidentType.INAPPROPRIATE_BEHAVIOR,
                description="é" * 5000,
                reported_by_user_id=None,
                created_at=NOW,
            )
        )
        tx.audit.add_many(
            [
                NewAuditEntry(
                    guest_id=None,
                    endpoint="magiclink",
                    action="INVALIDATE_TOKEN",
                    resource_id=str(seeded.booking.id),
                    success=True,
                    metadata={"reason": "booking_cancelled", "count": 3, "nested": [1, "x"]},
                    created_at=NOW,
                )
            ]
        )
        tx.tokens.invalidate_by_booking(
            seeded.booking.id, reason=InvalidationReason.INCIDENT_REPORTED, now=NOW
        )
        tx.commit()
    with uow.transaction(readonly=True) as tx:
        (listed,) = tx.incidents.list_by_booking_uid(seeded.booking.uid)
        (entry,) = tx.audit.list(booking_id=seeded.booking.id)
        (token,) = tx.tokens.list_by_booking(seeded.booking.id)
        booking = tx.bookings.get(seeded.booking.id)
    assert listed == incident
    assert listed.type is IncidentType.INAPPROPRIATE_BEHAVIOR
    assert dict(entry.metadata) == {"reason": "booking_cancelled", "count": 3, "nested": [1, "x"]}
    assert token.invalidation_reason is InvalidationReason.INCIDENT_REPORTED
    assert booking is not None and booking.status is BookingStatus.SCHEDULED


def test_lookup_reads_token_guest_and_booking_in_one_row(any_engine: Engine) -> None:
    """R7/§5.4: the lookup reports the booking's current state, and None once it is gone."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    seeded = seed_booking(uow)
    token_hash = hash_token(seeded.raws[0])
    with uow.transaction() as tx:
        lookup = tx.tokens.lookup(token_hash)
        assert lookup is not None
        assert lookup.token == seeded.tokens[0]
        assert lookup.guest == seeded.guests[0]
        assert (lookup.booking_status, lookup.booking_revision) == (BookingStatus.SCHEDULED, 0)
        assert lookup.booking_link_generation == lookup.token.link_generation == 0
        tx.bookings.update(attrs.evolve(seeded.booking, revision=1))
        moved = tx.tokens.lookup(token_hash)
        assert moved is not None  # the booking moved on: verification says booking_rescheduled
        assert (moved.token.booking_revision, moved.booking_revision) == (0, 1)
        assert not tx.tokens.consume(seeded.tokens[0].id, now=NOW)
        tx.commit()
    # A host deletes the booking: no foreign key stops it, and verification must refuse.
    with any_engine.begin() as connection:
        connection.execute(bookings.delete().where(bookings.c.id == seeded.booking.id))
    with uow.transaction() as tx:
        gone = tx.tokens.lookup(token_hash)
        assert gone is not None
        # Verification reads this as booking_missing (§5.4).
        assert (gone.booking_status, gone.booking_revision) == (None, None)
        assert gone.booking_link_generation is None
        assert not tx.tokens.consume(seeded.tokens[0].id, now=NOW)
        assert tx.tokens.lookup("0" * 64) is None


def test_booking_update_writes_the_operation_id(any_engine: Engine) -> None:
    """Issue 12.2 / revision 0007: `update` writes the booking's operation id with its
    status and times; `get` and `get_by_uid` read it back (the `landed` key of the booking
    services); a booking as `add` stored it has none."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    seeded = seed_booking(uow)
    assert seeded.booking.operation_id is None
    first = attrs.evolve(seeded.booking, status=BookingStatus.COMPLETED, operation_id="a" * 32)
    with uow.transaction() as tx:
        tx.bookings.update(first)
        tx.commit()
    with uow.transaction(readonly=True) as tx:
        assert tx.bookings.get(first.id) == first
        assert tx.bookings.get_by_uid(first.uid) == first
    second = attrs.evolve(first, status=BookingStatus.CANCELLED, operation_id="b" * 32)
    with uow.transaction() as tx:
        tx.bookings.update(second)
        assert tx.bookings.get(second.id, for_update=True) == second
        tx.commit()
    with uow.transaction(readonly=True) as tx:
        stored = tx.bookings.get(second.id)
    assert stored is not None and stored.operation_id == "b" * 32


def test_invalidate_by_booking_counts_per_guest(any_engine: Engine) -> None:
    """R5.3/R8.2: per-guest counts, on every path: UPDATE ... RETURNING (PostgreSQL), and the
    count-then-update one (MariaDB, where UPDATE has no RETURNING; SQLite, where it is
    slower)."""
    if any_engine.dialect.name == "mysql":
        assert not any_engine.dialect.update_returning  # the locking SELECT path is exercised
    uow = SqlAlchemyUnitOfWork(any_engine)
    seeded = seed_booking(uow, tokens=7, guests=3)
    other = seed_booking(uow, tokens=2)
    with uow.transaction() as tx:
        assert tx.tokens.consume(seeded.tokens[0].id, now=NOW)
        first = tx.tokens.invalidate(
            seeded.tokens[1].id, reason=InvalidationReason.MANUAL_REVOCATION, now=NOW
        )
        assert first == seeded.tokens[1]
        later = NOW + timedelta(minutes=1)
        result = tx.tokens.invalidate_by_booking(
            seeded.booking.id, reason=InvalidationReason.BOOKING_CANCELLED, now=later
        )
        again = tx.tokens.invalidate_by_booking(
            seeded.booking.id, reason=InvalidationReason.BOOKING_CANCELLED, now=later
        )
        tx.commit()
    g = [guest.id for guest in seeded.guests]
    # Tokens 0..6 go round-robin to guests 0,1,2; token 1 (guest 1) was already invalidated.
    assert dict(result.per_guest) == {g[0]: 3, g[1]: 1, g[2]: 2}
    assert result.count == 6
    assert dict(again.per_guest) == {}
    with uow.transaction(readonly=True) as tx:
        after = tx.tokens.list_by_booking(seeded.booking.id)
        untouched = tx.tokens.list_by_booking(other.booking.id)
    assert [t.id for t in after] == [t.id for t in seeded.tokens]
    assert all(t.invalidated for t in after)
    assert after[0].used_at == NOW  # consumed earlier: keeps its used_at (R1.4)
    assert after[1].invalidation_reason is InvalidationReason.MANUAL_REVOCATION
    assert {t.used_at for t in after[2:]} == {later}
    assert untouched == other.tokens


def test_invalidate_live_touches_only_live_tokens_of_that_pair(any_engine: Engine) -> None:
    """§5.8: supersede revokes the guest's live links for one booking (or inbox) only."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    seeded = seed_booking(uow, tokens=4, guests=2)
    guest = seeded.guests[0]
    with uow.transaction() as tx:
        inbox = tx.tokens.add(
            MagicLinkToken.new(
                token_hash="e" * 64,
                guest_id=guest.id,
                booking_id=None,
                booking_revision=None,
                expires_at=NOW + TTL,
                created_at=NOW,
            )
        )
        assert tx.tokens.consume(seeded.tokens[0].id, now=NOW)
        changed = tx.tokens.invalidate_live(
            guest_id=guest.id,
            booking_id=seeded.booking.id,
            reason=InvalidationReason.SUPERSEDED,
            now=NOW,
        )
        assert changed == 1  # token 2 only: token 0 was used, 1 and 3 belong to guest 1
        assert (
            tx.tokens.invalidate_live(
                guest_id=guest.id, booking_id=None, reason=InvalidationReason.SUPERSEDED, now=NOW
            )
            == 1
        )
        refreshed = tx.tokens.get(inbox.id)
        tx.commit()
    assert refreshed is not None and refreshed.invalidated and refreshed.used_at == NOW


def test_stats_purge_and_count_expired(any_engine: Engine) -> None:
    """Operators' queries: exclusive state counts, bounded purge in one statement."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    seeded = seed_booking(uow, tokens=5)
    later = NOW + TTL + timedelta(seconds=1)
    with uow.transaction() as tx:
        tx.tokens.consume(seeded.tokens[0].id, now=NOW)
        tx.tokens.invalidate(seeded.tokens[1].id, reason=InvalidationReason.SUPERSEDED, now=NOW)
        stats_now = tx.tokens.stats(now=NOW)
        stats_later = tx.tokens.stats(now=later)
        assert tx.tokens.count_expired(expired_before=later) == 5
        assert tx.tokens.purge_expired(expired_before=later, limit=0) == 0
        assert tx.tokens.purge_expired(expired_before=later, limit=2) == 2
        assert tx.tokens.purge_expired(expired_before=NOW, limit=10) == 0
        assert tx.tokens.purge_expired(expired_before=later, limit=10) == 3
        assert tx.tokens.count_expired(expired_before=later) == 0
        tx.commit()
    assert (stats_now.live, stats_now.expired, stats_now.used, stats_now.invalidated) == (
        3,
        0,
        1,
        1,
    )
    assert dict(stats_now.invalidated_by_reason) == {"superseded": 1}
    assert (stats_later.live, stats_later.expired) == (0, 3)


def test_audit_list_filters_and_orders_newest_first(any_engine: Engine) -> None:
    """R8: `audit_trail(booking_id=B)` is `resource_id == str(B)`, newest first, limited."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    with uow.transaction() as tx:
        tx.audit.add_many([])
        tx.audit.add_many(
            [
                NewAuditEntry(
                    guest_id=guest,
                    endpoint="magiclink",
                    action="CREATE_TOKEN",
                    resource_id=resource,
                    success=True,
                    metadata={"i": i},
                    created_at=NOW + timedelta(seconds=i % 3),
                )
                for i, (guest, resource) in enumerate(
                    [(1, "10"), (2, "10"), (1, "11"), (1, "10"), (None, None), (2, "10")]
                )
            ]
        )
        tx.commit()
    with uow.transaction(readonly=True) as tx:
        by_booking = tx.audit.list(booking_id=10)
        by_both = tx.audit.list(booking_id=10, guest_id=1)
        by_guest = tx.audit.list(guest_id=2, limit=1)
        everything = tx.audit.list()
        nothing = tx.audit.list(limit=0)
    assert [e.metadata["i"] for e in by_booking] == [5, 1, 3, 0]  # created_at desc, id desc
    assert [e.metadata["i"] for e in by_both] == [3, 0]
    assert [e.metadata["i"] for e in by_guest] == [5]
    assert len(everything) == 6 and nothing == []


def test_transaction_rolls_back_unless_committed(any_engine: Engine) -> None:
    """Leaving the block without commit, or by an exception, discards the writes."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    with uow.transaction() as tx:
        tx.guests.get_or_create("a@example.com", now=NOW, last_request_at=None)
    with pytest.raises(RuntimeError), uow.transaction() as tx:
        tx.guests.get_or_create("b@example.com", now=NOW, last_request_at=None)
        raise RuntimeError("boom")
    with uow.transaction() as tx:
        tx.guests.get_or_create("c@example.com", now=NOW, last_request_at=None)
        tx.rollback()
        tx.guests.get_or_create("d@example.com", now=NOW, last_request_at=None)
        tx.commit()
        # After commit the same transaction object starts a new database transaction.
        tx.guests.get_or_create("e@example.com", now=NOW, last_request_at=None)
    with uow as tx:
        present = [
            email
            for email in ("a", "b", "c", "d", "e")
            if tx.guests.get_by_email(f"{email}@example.com") is not None
        ]
    assert present == ["d"]


def test_closed_transaction_refuses_work_and_close_is_idempotent(any_engine: Engine) -> None:
    """A closed transaction raises `StorageError`, never a SQLAlchemy error."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    tx = uow.transaction()
    tx.close()
    tx.close()
    with pytest.raises(StorageError, match="closed"):
        tx.guests.get(1)
    with pytest.raises(StorageError):
        tx.commit()


def test_uncommitted_writes_are_invisible_to_other_transactions(any_engine: Engine) -> None:
    """Isolation: another transaction sees a write only after commit."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    with uow.transaction() as writer:
        writer.guests.get_or_create("w@example.com", now=NOW, last_request_at=None)
        if any_engine.dialect.name != "sqlite":  # SQLite: the writer holds the only write lock
            with uow.transaction(readonly=True) as reader:
                assert reader.guests.get_by_email("w@example.com") is None
        writer.commit()
    with uow.transaction(readonly=True) as reader:
        assert reader.guests.get_by_email("w@example.com") is not None


def test_sqlite_transactions_begin_immediate_and_readonly_open_none(sqlite_engine: Engine) -> None:
    """§5.1 on SQLite: a write transaction takes the write lock at BEGIN (no upgrade
    deadlock); a read-only one sends no BEGIN at all (issue 15.1: one statement, one round
    trip); foreign keys are enforced."""
    uow = SqlAlchemyUnitOfWork(sqlite_engine)
    with count_statements(sqlite_engine) as log:
        with uow.transaction() as tx:
            tx.guests.get(1)
        with uow.transaction(readonly=True) as tx:
            tx.guests.get(1)
    begins = [s for s in log.statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE"]
    with uow.transaction() as tx, pytest.raises(StorageError):
        tx.tokens.add(
            MagicLinkToken.new(
                token_hash="1" * 64,
                guest_id=999,
                booking_id=None,
                booking_revision=None,
                expires_at=NOW,
                created_at=NOW,
            )
        )


# What opens or ends a transaction (savepoints, ROLLBACK TO, left out).
_SQLITE_CONTROL = re.compile(r"\s*(BEGIN|COMMIT|END|ROLLBACK(?!\s+TO))\b", re.IGNORECASE)


@contextmanager
def sqlite_trace(engine: Engine) -> Iterator[list[str]]:
    """Every statement SQLite itself runs on the engine's connections while tracing: the
    driver's own transaction control included (pysqlite's implicit BEGIN, the COMMIT of
    `commit()`), which `count_statements` cannot see."""
    traced: list[str] = []

    def on_checkout(dbapi_connection: Any, _record: object, _proxy: object) -> None:
        dbapi_connection.set_trace_callback(traced.append)

    def on_checkin(dbapi_connection: Any, _record: object) -> None:
        if dbapi_connection is not None:
            dbapi_connection.set_trace_callback(None)

    event.listen(engine, "checkout", on_checkout)
    event.listen(engine, "checkin", on_checkin)
    try:
        yield traced
    finally:
        event.remove(engine, "checkout", on_checkout)
        event.remove(engine, "checkin", on_checkin)


@pytest.mark.parametrize("host_level", [None, "AUTOCOMMIT", "SERIALIZABLE"])
def test_sqlite_driver_adds_no_transaction_control_of_its_own(
    tmp_path: Path, host_level: str | None
) -> None:
    """§5.1/§5.2 on SQLite, seen from SQLite itself: our BEGIN IMMEDIATE comes before every
    statement of a write transaction, so pysqlite never adds its own deferred BEGIN before a
    write; each write transaction ends in exactly one COMMIT or ROLLBACK; a rolled-back
    write leaves nothing; a read-only transaction sends no transaction control at all
    (issue 15.1), and pysqlite adds none before its SELECT. And the connection's isolation level is never switched (reverting
    it costs `PRAGMA read_uncommitted`, which expires every prepared statement). Whatever
    the host's engine level: the driver's default, AUTOCOMMIT, or SERIALIZABLE."""
    options = {} if host_level is None else {"isolation_level": host_level}
    engine = sqlite_file_engine(tmp_path, **options)
    metadata.create_all(engine)
    uow = SqlAlchemyUnitOfWork(engine)

    def control(statements: list[str]) -> list[str]:
        return [s.strip().upper() for s in statements if _SQLITE_CONTROL.match(s)]

    def run(
        work: Callable[[SqlAlchemyTransaction], object], *, readonly: bool = False
    ) -> list[str]:
        with sqlite_trace(engine) as traced, uow.transaction(readonly=readonly) as tx:
            work(tx)
        statements = [s for s in traced if not s.lstrip().upper().startswith("PRAGMA")]
        if not readonly:
            assert statements[0].startswith("BEGIN"), statements  # nothing before our BEGIN
        assert not [s for s in traced if "read_uncommitted" in s.lower()], traced
        return control(statements)

    def write_and_commit(tx: SqlAlchemyTransaction) -> None:
        tx.guests.get_or_create("kept@example.com", now=NOW, last_request_at=None)
        tx.commit()
        tx.guests.set_blocked(1, True)  # the transaction begins again after a commit
        tx.commit()

    def write_and_drop(tx: SqlAlchemyTransaction) -> None:
        tx.guests.get_or_create("dropped@example.com", now=NOW, last_request_at=None)

    try:
        committed = ["BEGIN IMMEDIATE", "COMMIT", "BEGIN IMMEDIATE", "COMMIT"]
        assert run(write_and_commit) == committed
        assert run(write_and_drop) == ["BEGIN IMMEDIATE", "ROLLBACK"]
        assert run(lambda tx: tx.guests.get(1), readonly=True) == []
        with uow.transaction(readonly=True) as tx:
            kept = tx.guests.get_by_email("kept@example.com")
            assert kept is not None and kept.blocked
            assert tx.guests.get_by_email("dropped@example.com") is None
    finally:
        engine.dispose()


@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize(
    "server",
    [
        pytest.param("postgres_engine", marks=pytest.mark.postgres),
        pytest.param("mariadb_engine", marks=pytest.mark.mariadb),
    ],
)
def test_server_transactions_run_read_committed(
    request: pytest.FixtureRequest, server: str, readonly: bool
) -> None:
    """READ COMMITTED on PostgreSQL and MariaDB, so a race loser can read the winner."""
    any_engine: Engine = request.getfixturevalue(server)
    uow = SqlAlchemyUnitOfWork(any_engine)
    with uow.transaction(readonly=readonly) as tx:
        connection = tx.connection()
        if any_engine.dialect.name == "postgresql":
            level = connection.exec_driver_sql("SHOW transaction_isolation").scalar()
            assert level == "read committed"
        else:
            # The transaction's own level is not visible in MariaDB; check behaviour instead.
            tx.guests.get_by_email("late@example.com")
            with any_engine.begin() as other:
                other.execute(
                    guests.insert(),
                    {
                        "normalized_email": "late@example.com",
                        "blocked": False,
                        "last_request_at": None,
                        "created_at": NOW,
                    },
                )
            assert tx.guests.get_by_email("late@example.com") is not None


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("setting", "level"),
    [
        ("engine", "AUTOCOMMIT"),
        ("engine", "REPEATABLE READ"),
        ("execution_options", "SERIALIZABLE"),
        ("execution_options", "AUTOCOMMIT"),
    ],
)
def test_postgres_read_committed_whatever_the_host_set(
    postgres_engine: Engine, setting: str, level: str
) -> None:
    """The resting level of a pooled connection is read once and then trusted, yet a
    host's own level still never leaks into our transactions: an engine built at another
    level or in AUTOCOMMIT (which `get_isolation_level()` does not report), or
    `execution_options(isolation_level=...)` on an engine sharing the pool of one at READ
    COMMITTED. Each of our transactions is one READ COMMITTED transaction (a rollback
    undoes its write), and the connection goes back at the host's level."""
    base = new_postgres_engine(postgres_engine.url, pool_size=1, max_overflow=0)
    host = base
    if setting == "engine":
        host = new_postgres_engine(postgres_engine.url, isolation_level=level)
    try:
        # One transaction on the plain engine first: its connection's level is remembered.
        with SqlAlchemyUnitOfWork(base).transaction() as tx:
            tx.guests.get(1)
        if setting == "execution_options":
            host = base.execution_options(isolation_level=level)
        uow = SqlAlchemyUnitOfWork(host)
        for attempt in range(2):
            with uow.transaction() as tx:
                connection = tx.connection()
                isolation = connection.exec_driver_sql("SHOW transaction_isolation").scalar()
                assert isolation == "read committed"
                tx.guests.get_or_create(f"{attempt}@example.com", now=NOW, last_request_at=None)
            with uow.transaction(readonly=True) as tx:
                assert tx.guests.get_by_email(f"{attempt}@example.com") is None
        with host.connect() as connection:
            if level == "AUTOCOMMIT":
                assert connection.connection.dbapi_connection.autocommit  # type: ignore[union-attr]
            else:
                assert connection.get_isolation_level() == level
    finally:
        if host is not base:
            host.dispose()
        base.dispose()


@pytest.mark.postgres
def test_postgres_level_is_read_once_and_never_set_when_already_read_committed(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the server's default level nothing is set on the connection for a write
    transaction (setting it, and SQLAlchemy reverting it at every check-in, was a measurable
    share of a verification); the level is read once per pooled connection, not per
    transaction. A read-only checkout runs in AUTOCOMMIT (issue 15.1), switched on and back
    off by the unit of work on the psycopg connection itself (psycopg sends nothing for
    either), so the dialect's isolation-level setter is not called for it at all
    (`test_read_only_checkout_returns_out_of_autocommit` checks the switch back)."""
    engine = new_postgres_engine(postgres_engine.url, pool_size=1, max_overflow=0)
    calls: list[str] = []
    dialect = engine.dialect
    real_get, real_set = dialect.get_isolation_level, dialect.set_isolation_level

    def get_level(dbapi_connection: Any) -> Any:
        calls.append("get")
        return real_get(dbapi_connection)

    def set_level(dbapi_connection: Any, level: Any) -> None:
        calls.append(f"set {level}")
        real_set(dbapi_connection, level)

    monkeypatch.setattr(dialect, "get_isolation_level", get_level)
    monkeypatch.setattr(dialect, "set_isolation_level", set_level)
    try:
        uow = SqlAlchemyUnitOfWork(engine)
        for readonly in (False, True, False):
            with uow.transaction(readonly=readonly) as tx:
                tx.guests.get(1)
        assert calls == ["get"]
    finally:
        engine.dispose()


def test_uow_leaves_engine_defaults_alone(any_engine: Engine) -> None:
    """The host's engine is not reconfigured: after our transaction, a pooled connection
    has its original isolation level (SQLAlchemy reverts per-connection options)."""
    with any_engine.connect() as connection:
        before = connection.get_isolation_level()
    uow = SqlAlchemyUnitOfWork(any_engine)
    with uow.transaction() as tx:
        tx.guests.get(1)
    with any_engine.connect() as connection:
        assert connection.get_isolation_level() == before


def test_identifiers_compare_exactly_on_every_dialect(any_engine: Engine) -> None:
    """E-mails, uids and hashes are compared byte for byte: MariaDB's default collation
    would make "josé" equal "jose" (one guest for two people) and "ABC" equal "abc"."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    with uow.transaction() as tx:
        accented, created_accented = tx.guests.get_or_create(
            "josé@example.com", now=NOW, last_request_at=None
        )
        plain, created_plain = tx.guests.get_or_create(
            "jose@example.com", now=NOW, last_request_at=None
        )
        for uid in ("ABC", "abc"):
            tx.bookings.add(
                Booking(
                    id=UNSAVED_ID,
                    uid=uid,
                    mentor_id=1,
                    guest_email="jose@example.com",
                    start_time=NOW,
                    end_time=NOW + TTL,
                    status=BookingStatus.SCHEDULED,
                    revision=0,
                )
            )
        tx.commit()
    assert created_accented and created_plain and accented.id != plain.id
    with uow.transaction(readonly=True) as tx:
        found = tx.guests.get_by_email("josé@example.com")
        upper = tx.bookings.get_by_uid("ABC")
        lower = tx.bookings.get_by_uid("abc")
    assert found == accented
    assert upper is not None and lower is not None and upper.id != lower.id


@pytest.mark.postgres
@pytest.mark.parametrize("readonly", [True, False])
def test_postgres_read_only_transaction_opens_no_server_transaction(
    postgres_engine: Engine, readonly: bool
) -> None:
    """Issue 15.1: a read-only transaction's SELECT is one round trip. The server's own
    transaction status after the SELECT says whether a BEGIN went before it: IDLE in a
    read-only checkout (autocommit), INTRANS in a write one."""
    import psycopg

    uow = SqlAlchemyUnitOfWork(postgres_engine)
    with uow.transaction(readonly=readonly) as tx:
        tx.guests.get(1)
        status = tx.connection().connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
    expected = psycopg.pq.TransactionStatus.INTRANS
    if readonly:
        expected = psycopg.pq.TransactionStatus.IDLE
    assert status == expected
    with postgres_engine.connect() as connection:  # the pool got its connection back clean
        assert connection.get_isolation_level() == "READ COMMITTED"
