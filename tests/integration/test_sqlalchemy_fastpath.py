"""Issue 15: the token hot path on the DBAPI cursor gives exactly what Core gives.

The same operations run twice on fresh rows of one database: once on the fast path (no
cursor-level listener on the engine), once through Core (a no-op `before_cursor_execute`
listener is attached, which is what sends every statement through Core). The records must
be equal; a lost connection on the fast path must stay a transient error and leave the pool
healthy; a read-only checkout must go back to the pool out of autocommit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, event, literal, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine.interfaces import Dialect

from magiclink import AuditAction, InvalidationReason, MagicLinkToken, StorageError
from magiclink.adapters.sqlalchemy import SqlAlchemyTransaction, SqlAlchemyUnitOfWork, metadata
from magiclink.adapters.sqlalchemy._fastpath import FAST_DRIVERS, fast_path_for
from magiclink.adapters.sqlalchemy._prepared import timestamp_binder, timestamp_reader
from magiclink.adapters.sqlalchemy._statements import GET_GUEST_BY_EMAIL
from magiclink.adapters.sqlalchemy._tables import UTCDateTime
from magiclink.ports import NewAuditEntry, TokenLookup
from magiclink.testing import hash_token
from tests.integration.seed import NOW, TTL, Seeded, seed_booking


@contextmanager
def through_core(engine: Engine) -> Iterator[None]:
    """Send every statement of the block through Core (a listener must see each one)."""

    def listener(*_args: object) -> None:
        return None

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def _exercise(uow: SqlAlchemyUnitOfWork) -> dict[str, object]:
    """Every fast-path operation on fresh rows; what each returned, ids left out."""
    seeded = seed_booking(uow, tokens=3, guests=2)
    out: dict[str, object] = {}
    with uow.transaction(readonly=True) as tx:
        found = tx.tokens.lookup(hash_token(seeded.raws[0]))
        assert found is not None
        out["lookup"] = _without_ids(found)
        out["unknown"] = tx.tokens.lookup(hash_token(seeded.raws[0] + "-unknown"))
    with uow.transaction() as tx:
        out["consume"] = tx.tokens.consume(seeded.tokens[0].id, now=NOW)
        out["consume again"] = tx.tokens.consume(seeded.tokens[0].id, now=NOW)
        added = tx.tokens.add(
            MagicLinkToken.new(
                token_hash=hash_token(seeded.raws[0] + "-inbox"),
                guest_id=seeded.guests[0].id,
                booking_id=None,
                booking_revision=None,
                expires_at=NOW + TTL,
                created_at=NOW,
            )
        )
        assert tx.tokens.get(added.id) == added
        tx.audit.add_many(
            [
                NewAuditEntry(
                    guest_id=seeded.guests[0].id,
                    endpoint="fastpath",
                    action=AuditAction.CONSUME_TOKEN,
                    resource_id=str(seeded.booking.id),
                    success=True,
                    metadata={"token_id": added.id, "text": "é ✓"},
                    created_at=NOW,
                    operation_id=f"op-{added.id}",
                )
            ]
        )
        tx.commit()
    with uow.transaction() as tx:
        result = tx.tokens.invalidate_by_booking(
            seeded.booking.id, reason=InvalidationReason.BOOKING_CANCELLED, now=NOW
        )
        out["invalidated"] = sorted(result.per_guest.values())
        tx.commit()
    with uow.transaction(readonly=True) as tx:
        used = tx.tokens.get(seeded.tokens[0].id)
        assert used is not None
        out["used_at"] = used.used_at
        entries = tx.audit.by_operation(f"op-{added.id}")
        out["audit"] = [
            attrs.evolve(
                entry,
                id=0,
                guest_id=0,
                resource_id="",
                operation_id="",
                metadata={**entry.metadata, "token_id": 0},
            )
            for entry in entries
        ]
        out["after"] = [
            (t.invalidated, t.invalidation_reason, t.used_at)
            for t in tx.tokens.list_by_booking(seeded.booking.id)
        ]
    with uow.transaction() as tx:
        later = NOW + timedelta(days=1)
        out["consume dead"] = tx.tokens.consume(seeded.tokens[1].id, now=later)
    out.update(_exercise_constants(uow, seeded))
    return out


def _exercise_constants(uow: SqlAlchemyUnitOfWork, seeded: Seeded) -> dict[str, object]:
    """The other repositories' constant statements (`FastPath.prepares`), ids left out."""
    guest = seeded.guests[0]
    out: dict[str, object] = {}
    with uow.transaction() as tx:
        found = tx.guests.get_by_email(guest.normalized_email)
        assert found is not None and tx.guests.get(guest.id) == found
        out["guest"] = attrs.evolve(found, id=0, normalized_email="")
        out["claim"] = tx.guests.claim_request_slot(guest.id, now=NOW, not_after=NOW)
        out["claim again"] = tx.guests.claim_request_slot(
            guest.id, now=NOW, not_after=NOW - timedelta(seconds=1)
        )
        blocked = tx.guests.set_blocked(guest.id, True)
        out["blocked"] = None if blocked is None else blocked.blocked
        booking = tx.bookings.get(seeded.booking.id, for_update=True)
        assert booking is not None and tx.bookings.get_by_uid(booking.uid) == booking
        out["booking"] = attrs.evolve(booking, id=0, uid="", guest_email="")
        out["audit kinds"] = sorted(
            str(entry.action) for entry in tx.audit.list(guest_id=guest.id, limit=10)
        )
        token = tx.tokens.add(
            MagicLinkToken.new(
                token_hash=hash_token(f"{seeded.raws[0]}-audited"),
                guest_id=guest.id,
                booking_id=None,
                booking_revision=None,
                expires_at=NOW + TTL,
                created_at=NOW,
            )
        )
        entry = attrs.evolve(_ENTRY, guest_id=guest.id, operation_id=f"audited-{token.id}")
        out["consumed with audit"] = [
            tx.consume_with_audit(token.id, now=NOW, entry=entry) for _ in range(2)
        ]
        out["its entries"] = len(tx.audit.by_operation(f"audited-{token.id}"))
        tx.commit()
    batch = seed_booking(uow, tokens=3, guests=2)
    ids = {guest.id: f"guest {n}" for n, guest in enumerate(batch.guests)}
    with uow.transaction() as tx:
        template = attrs.evolve(_ENTRY, operation_id=f"batch-{batch.booking.id}")
        killed = tx.invalidate_booking_with_audit(
            batch.booking.id, reason=InvalidationReason.BOOKING_CANCELLED, now=NOW, entry=template
        )
        out["batch with audit"] = {ids[guest]: count for guest, count in killed.per_guest.items()}
        out["batch entries"] = sorted(
            (ids[e.guest_id or 0], dict(e.metadata))
            for e in tx.audit.by_operation(f"batch-{batch.booking.id}")
        )
        tx.commit()
    one = seed_booking(uow)
    with uow.transaction() as tx:
        template = attrs.evolve(_ENTRY, guest_id=None, operation_id=f"accepted-{one.booking.id}")
        got = tx.consume_if_accepted(
            hash_token(one.raws[0]), now=NOW, booking_id=one.booking.id, entry=template
        )
        out["accepted"] = None if got is None else _without_ids(got)
        out["accepted entries"] = [
            (
                e.resource_id == str(one.booking.id),
                e.metadata == template.of_token(got.token).metadata,
            )
            for e in tx.audit.by_operation(f"accepted-{one.booking.id}")
            if got is not None
        ]
        new = attrs.evolve(one.tokens[0], id=0, token_hash=hash_token(f"{one.raws[0]}-new"))
        created = attrs.evolve(template, action=AuditAction.CREATE_TOKEN)
        stored = tx.add_token_with_audit(new, created)
        out["created"] = attrs.evolve(stored, id=0, token_hash="", guest_id=0, booking_id=0)
        out["created entries"] = [
            e.metadata == created.of_token(stored).metadata and e.guest_id == stored.guest_id
            for e in tx.audit.by_operation(created.operation_id or "")
            if e.action == AuditAction.CREATE_TOKEN
        ]
        tx.commit()
    return out


def _without_ids(found: TokenLookup) -> TokenLookup:
    """A lookup with its row ids, hash and address blanked (they differ from run to run)."""
    return attrs.evolve(
        found,
        token=attrs.evolve(found.token, id=0, token_hash="", guest_id=0, booking_id=0),
        guest=attrs.evolve(found.guest, id=0, normalized_email=""),
    )


_ENTRY = NewAuditEntry(
    guest_id=0,
    endpoint="fastpath",
    action=AuditAction.CONSUME_TOKEN,
    resource_id=None,
    success=True,
    metadata={"via": "consume_with_audit"},
    created_at=NOW,
    operation_id=None,
)


def test_fast_path_matches_core(any_engine: Engine) -> None:
    """Same records, counts and stored rows whichever path runs the statements."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    fast = _exercise(uow)
    with through_core(any_engine):
        core = _exercise(uow)
    assert fast == core
    assert fast["consume"] is True and fast["consume again"] is False
    assert fast["invalidated"] == [1, 2] and fast["used_at"] == NOW
    # Transaction.consume_with_audit: one statement on PostgreSQL, two elsewhere; alike.
    assert fast["consumed with audit"] == [True, False] and fast["its entries"] == 1
    # Transaction.invalidate_booking_with_audit: likewise.
    assert fast["batch with audit"] == {"guest 0": 2, "guest 1": 1}
    assert [count for _, count in fast["batch entries"]] == [  # type: ignore[attr-defined]
        {"via": "consume_with_audit", "count": 2},
        {"via": "consume_with_audit", "count": 1},
    ]
    # Transaction.add_token_with_audit: one statement on PostgreSQL, two elsewhere; alike.
    assert fast["created entries"] == [True]
    # Transaction.consume_if_accepted: one statement on PostgreSQL (the lookup of the token
    # it consumed, and its entry), nothing elsewhere.
    if any_engine.dialect.name == "postgresql":
        lookup = fast["accepted"]
        assert isinstance(lookup, TokenLookup) and lookup.token.used_at == NOW
        assert fast["accepted entries"] == [(True, True)]
    else:
        assert fast["accepted"] is None and fast["accepted entries"] == []


def test_fast_path_runs_only_constant_statements(any_engine: Engine) -> None:
    """A statement built at run time is not compiled into the fast path (it would fill the
    cache); the constants of the statements module are."""
    fast = fast_path_for(any_engine)
    if fast is None:  # pymysql: Core runs every statement
        assert any_engine.dialect.driver not in FAST_DRIVERS
        return
    assert fast.prepares(GET_GUEST_BY_EMAIL)
    assert not fast.prepares(select(literal(1)))


def test_fast_path_drivers(any_engine: Engine) -> None:
    """pysqlite and psycopg take the fast path; other drivers (pymysql) stay on Core."""
    expected = any_engine.dialect.driver in ("pysqlite", "psycopg")
    assert (fast_path_for(any_engine) is not None) is expected


@pytest.mark.postgres
def test_lost_connection_on_the_fast_path_is_transient(postgres_engine: Engine) -> None:
    """R9.4: a killed backend under a fast-path lookup is transient; the pool recovers."""
    uow = SqlAlchemyUnitOfWork(postgres_engine)
    seeded = seed_booking(uow)
    token_hash = hash_token(seeded.raws[0])
    with uow.transaction() as tx:
        pid = tx.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with postgres_engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(StorageError) as lost:
            tx.tokens.lookup(token_hash)
        assert lost.value.transient
    with uow.transaction(readonly=True) as tx:
        assert tx.tokens.lookup(token_hash) is not None


@pytest.mark.postgres
def test_read_only_checkout_returns_out_of_autocommit(postgres_engine: Engine) -> None:
    """The read-only transaction's autocommit switch does not outlive its checkout."""
    uow = SqlAlchemyUnitOfWork(postgres_engine)
    seeded = seed_booking(uow)
    with uow.transaction(readonly=True) as tx:
        assert tx.tokens.lookup(hash_token(seeded.raws[0])) is not None
        raw = tx.connection().connection.dbapi_connection
        assert raw is not None and raw.autocommit
    with postgres_engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None and not raw.autocommit
        assert connection.get_isolation_level() == "READ COMMITTED"


class _FlakyCommit(sqlite3.Connection):
    """A pysqlite connection whose commit fails while `failing` is set."""

    failing = False

    def commit(self) -> None:
        if _FlakyCommit.failing:
            raise sqlite3.OperationalError("disk I/O error")
        super().commit()


def test_bare_write_transaction_rolls_back_a_failed_commit(tmp_path: Path) -> None:
    """A write transaction on the bare pooled connection (no Core `Connection`): a failed
    commit is a `StorageError`, and nothing of the transaction is stored."""
    engine = create_engine(
        f"sqlite:///{tmp_path / 'flaky.db'}", connect_args={"factory": _FlakyCommit}
    )
    metadata.create_all(engine)
    uow = SqlAlchemyUnitOfWork(engine)
    seeded = seed_booking(uow)
    token_id = seeded.tokens[0].id
    try:
        with uow.transaction() as tx:
            assert tx.tokens.consume(token_id, now=NOW)
            assert isinstance(tx, SqlAlchemyTransaction) and tx._connection is None  # bare
            _FlakyCommit.failing = True
            with pytest.raises(StorageError, match="disk I/O error"):
                tx.commit()
    finally:
        _FlakyCommit.failing = False
    with uow.transaction(readonly=True) as tx:
        stored = tx.tokens.get(token_id)
        assert stored is not None and stored.used_at is None
    engine.dispose()


def test_write_transaction_rolls_back_without_pool_reset(any_engine: Engine) -> None:
    """An uncommitted write is rolled back by `close()` itself, even on a pool that resets
    nothing on return (`pool_reset_on_return=None`), bare or not."""
    engine = create_engine(
        any_engine.url.render_as_string(hide_password=False), pool_reset_on_return=None
    )
    uow = SqlAlchemyUnitOfWork(engine)
    try:
        seeded = seed_booking(uow)
        with uow.transaction() as tx:
            assert tx.tokens.consume(seeded.tokens[0].id, now=NOW)
        with uow.transaction(readonly=True) as tx:
            stored = tx.tokens.get(seeded.tokens[0].id)
            assert stored is not None and stored.used_at is None
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_write_transaction_goes_bare_once_read_committed_is_known(
    postgres_engine: Engine,
) -> None:
    """A connection's first write checkout goes through Core (which reads the level the
    connection rests at); later ones run bare, still at READ COMMITTED."""
    postgres_engine.dispose()  # fresh connections: no resting level known yet
    uow = SqlAlchemyUnitOfWork(postgres_engine)
    with uow.transaction() as tx:
        assert isinstance(tx, SqlAlchemyTransaction) and tx._connection is not None
    with uow.transaction() as tx:
        assert isinstance(tx, SqlAlchemyTransaction) and tx._connection is None
        level = tx.connection().exec_driver_sql("SHOW transaction_isolation").scalar()
        assert level == "read committed"


_DIALECTS = [
    sqlite.dialect(),
    postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
    mysql.pymysql.dialect(),
]


@pytest.mark.parametrize("dialect", _DIALECTS, ids=lambda d: d.name)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))]),
    )
)
def test_fast_path_timestamps(dialect: Dialect, moment: datetime) -> None:
    """The fast path's one-call timestamp processors give what Core's give: the same bound
    value (on SQLite the same text, which is compared as text) and the same value read."""
    column = UTCDateTime()
    core_bind = column.dialect_impl(dialect).bind_processor(dialect)
    bound = timestamp_binder(column, dialect)(moment)
    assert core_bind is not None and bound == core_bind(moment)
    assert timestamp_binder(column, dialect)(None) is None
    core_read = column.dialect_impl(dialect).result_processor(dialect, None)
    assert core_read is not None
    read = timestamp_reader(column, dialect)(bound)
    assert read == core_read(bound) and read == moment and read.tzinfo is UTC


def test_fast_path_reads_sqlite_timestamps_core_reads() -> None:
    """Text SQLite holds that is not the default form (no microseconds, an offset another
    writer left) reads as Core's parser reads it."""
    dialect, column = sqlite.dialect(), UTCDateTime()
    core_read = column.dialect_impl(dialect).result_processor(dialect, None)
    assert core_read is not None
    texts = (
        "2026-01-02 03:04:05",
        "2026-01-02 03:04:05.000001",
        "2026-01-02 03:04:05.123",
        "2026-01-02 03:04:05+02:00",
        "2026-01-02T03:04:05.123456",
    )
    for text in texts:
        assert timestamp_reader(column, dialect)(text) == core_read(text)
    with pytest.raises(ValueError, match="naive"):
        timestamp_binder(column, dialect)(datetime(2026, 1, 2))


def test_one_write_transaction_commits_its_write_by_itself_only_on_postgres(
    any_engine: Engine,
) -> None:
    """Issue 15: on PostgreSQL a consume's transaction (`one_write_transaction`) runs in
    AUTOCOMMIT, so its one CTE has committed the consumption and its
    entry before `commit()` (no BEGIN, no COMMIT: two round trips), and so does a batch
    invalidation's one CTE; elsewhere each is two statements, held in a write transaction
    until `commit()`."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    seeded = seed_booking(uow)
    token = seeded.tokens[0]
    operation_id = f"one-write-{token.id}"
    entry = NewAuditEntry(
        token.guest_id, "magiclink", AuditAction.CONSUME_TOKEN, None, True, {}, NOW, operation_id
    )
    postgres = any_engine.dialect.name == "postgresql"

    def seen_elsewhere() -> tuple[bool, int]:
        with uow.transaction(readonly=True) as other:
            stored = other.tokens.get(token.id)
            entries = other.audit.by_operation(operation_id)
            return stored is not None and stored.used_at is not None, len(entries)

    with uow.one_write_transaction() as tx:
        assert tx.tokens.lookup(hash_token(seeded.raws[0])) is not None
        assert tx.consume_with_audit(token.id, now=NOW, entry=entry) is True
        assert seen_elsewhere() == ((True, 1) if postgres else (False, 0))
        tx.commit()
    assert seen_elsewhere() == (True, 1)

    def batch_seen_elsewhere() -> tuple[bool, int]:
        with uow.transaction(readonly=True) as other:
            stored = other.tokens.get(token.id)
            entries = other.audit.by_operation(f"{operation_id}-batch")
            return stored is not None and stored.invalidated, len(entries)

    batch = attrs.evolve(
        entry, action=AuditAction.INVALIDATE_TOKEN, operation_id=f"{operation_id}-batch"
    )
    with uow.one_write_transaction() as tx:
        reason = InvalidationReason.BOOKING_CANCELLED
        killed = tx.invalidate_booking_with_audit(
            seeded.booking.id, reason=reason, now=NOW, entry=batch
        )
        assert killed.count == 1
        assert batch_seen_elsewhere() == ((True, 1) if postgres else (False, 0))
        tx.commit()
    assert batch_seen_elsewhere() == (True, 1)
