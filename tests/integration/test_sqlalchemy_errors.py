"""§4 "No adapter or driver exception ever escapes", and R9.4's transient flag: every failure
of the SQL adapter is a magiclink error, classified, and free of statement parameters."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

import attrs
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy import exc as sa_exc

from magiclink import Booking, DuplicateRating, InvalidInput, MagicLinkToken, Rating, StorageError
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata, translate_errors
from magiclink.ports import UNSAVED_ID
from magiclink.testing import hash_token
from tests.databases import count_statements, new_mariadb_engine, new_postgres_engine
from tests.integration.seed import NOW, TTL, seed_booking

SECRET_HASH = hash_token("5" * 64)


def test_duplicate_rating_is_duplicate_rating_and_transaction_survives(
    any_engine: Engine,
) -> None:
    """R3.4: the unique rating per booking surfaces as `DuplicateRating`; the transaction
    stays usable (a SAVEPOINT on PostgreSQL), like the in-memory adapter's."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    seeded = seed_booking(uow)
    with uow.transaction() as tx:
        first = Rating(
            id=UNSAVED_ID,
            booking_id=seeded.booking.id,
            student_profile_id="p",
            rating=4,
            feedback="good",
            created_at=NOW,
        )
        tx.ratings.add(first)
        with pytest.raises(DuplicateRating):
            tx.ratings.add(attrs.evolve(first, rating=1, feedback=None))
        with pytest.raises(InvalidInput, match=r"^Booking uid already exists$"):
            tx.bookings.add(
                Booking(
                    id=UNSAVED_ID,
                    uid=seeded.booking.uid,
                    mentor_id=1,
                    guest_email="x@example.com",
                    start_time=NOW,
                    end_time=NOW + TTL,
                    status=seeded.booking.status,
                    revision=0,
                )
            )
        tx.guests.get_or_create("after@example.com", now=NOW, last_request_at=None)
        tx.commit()
    with uow.transaction(readonly=True) as tx:
        rating = tx.ratings.get_by_booking(seeded.booking.id)
        assert rating is not None and rating.rating == 4
        assert tx.guests.get_by_email("after@example.com") is not None


def test_other_integrity_errors_are_permanent_and_quote_no_values(any_engine: Engine) -> None:
    """A duplicate token hash is a permanent `StorageError` whose message has no hash."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    seeded = seed_booking(uow)
    with uow.transaction() as tx, pytest.raises(StorageError) as caught:
        tx.tokens.add(
            MagicLinkToken.new(
                token_hash=seeded.tokens[0].token_hash,
                guest_id=seeded.guests[0].id,
                booking_id=None,
                booking_revision=None,
                expires_at=NOW + TTL,
                created_at=NOW,
            )
        )
    assert not caught.value.transient
    assert seeded.tokens[0].token_hash not in str(caught.value)
    assert isinstance(caught.value.__cause__, sa_exc.IntegrityError)


def test_get_or_create_loser_reads_the_winner(any_engine: Engine) -> None:
    """The loser of a creation race blocks on the winner's row, then reads it (created
    False), and its transaction goes on: no IntegrityError ever surfaces."""
    uow = SqlAlchemyUnitOfWork(any_engine)
    email = "contended@example.com"
    outcome: list[object] = []

    def loser() -> None:
        try:
            with uow.transaction() as tx:
                guest, created = tx.guests.get_or_create(email, now=NOW, last_request_at=None)
                claimed = tx.guests.claim_request_slot(
                    guest.id, now=NOW, not_after=NOW - timedelta(minutes=1)
                )
                tx.commit()
            outcome.extend([guest.id, created, claimed])
        except BaseException as error:
            outcome.append(error)

    with count_statements(any_engine) as log:
        with uow.transaction() as winner:
            guest, created = winner.guests.get_or_create(email, now=NOW, last_request_at=None)
            thread = threading.Thread(target=loser)
            thread.start()
            time.sleep(0.3)  # the loser now waits: on the unique key, or on SQLite's lock
            assert winner.guests.claim_request_slot(
                guest.id, now=NOW, not_after=NOW - timedelta(minutes=1)
            )
            winner.commit()
        thread.join(30)
    assert created
    assert outcome == [guest.id, False, False]
    if any_engine.dialect.name != "sqlite":  # servers let the loser try its INSERT
        assert any(s.startswith("ROLLBACK TO SAVEPOINT") for s in log.statements)


def test_text_the_driver_cannot_encode_is_storage_error(any_engine: Engine) -> None:
    """A lone surrogate cannot be encoded by any driver: a `StorageError`, not the driver's
    raw UnicodeEncodeError (which escapes SQLAlchemy's own wrapping)."""
    with (
        pytest.raises(StorageError) as caught,
        SqlAlchemyUnitOfWork(any_engine).transaction() as tx,
    ):
        tx.guests.get_or_create("\ud800@example.com", now=NOW, last_request_at=None)
    assert not caught.value.transient
    assert isinstance(caught.value.__cause__, UnicodeEncodeError)


def test_unreachable_servers_raise_transient_storage_error() -> None:
    """A server that does not answer is `StorageError(transient=True)`, password-free."""
    urls = [
        "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/test",
        "mysql+pymysql://root:hunter2@127.0.0.1:1/test",
    ]
    for url in urls:
        engine = create_engine(url, connect_args={"connect_timeout": 2})
        with (
            pytest.raises(StorageError) as caught,
            SqlAlchemyUnitOfWork(engine).transaction() as tx,
        ):
            tx.guests.get(1)
        engine.dispose()
        assert caught.value.transient, url
        assert "hunter2" not in str(caught.value)
        assert isinstance(caught.value.__cause__, sa_exc.OperationalError)


def test_unopenable_sqlite_file_is_storage_error(tmp_path: Path) -> None:
    """A broken configuration (no such directory) is a permanent `StorageError`."""
    engine = create_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    with pytest.raises(StorageError) as caught:
        SqlAlchemyUnitOfWork(engine).transaction()
    engine.dispose()
    assert not caught.value.transient


def test_missing_tables_are_permanent_and_parameter_free(any_engine: Engine) -> None:
    """Schema not created: a clear permanent error that does not quote the looked-up hash."""
    metadata.drop_all(any_engine)
    try:
        with (
            pytest.raises(StorageError) as caught,
            SqlAlchemyUnitOfWork(any_engine).transaction() as tx,
        ):
            tx.tokens.lookup(SECRET_HASH)
        message = str(caught.value)
        assert not caught.value.transient
        assert SECRET_HASH not in message and "[SQL" not in message
        assert "magiclink_tokens" in message
    finally:
        metadata.create_all(any_engine)


def test_sqlite_database_locked_is_transient(tmp_path: Path) -> None:
    """SQLite's "database is locked" (another writer holds the lock) is worth a retry."""
    path = tmp_path / "locked.db"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.1})
    metadata.create_all(engine)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with (
            pytest.raises(StorageError) as caught,
            SqlAlchemyUnitOfWork(engine).transaction() as tx,
        ):
            tx.guests.get(1)
        assert caught.value.transient
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        engine.dispose()


@pytest.mark.postgres
def test_postgres_lock_timeout_and_lost_connection_are_transient(postgres_engine: Engine) -> None:
    """R9.4 on PostgreSQL: a lock timeout (55P03) and a killed backend are transient."""
    seeded = seed_booking(SqlAlchemyUnitOfWork(postgres_engine))
    # Keep the URL's own options (the test schema's search_path) and add a lock timeout.
    options = f"{postgres_engine.url.query.get('options', '')} -c lock_timeout=100".strip()
    impatient = new_postgres_engine(postgres_engine.url.update_query_dict({"options": options}))
    uow = SqlAlchemyUnitOfWork(impatient)
    try:
        with uow.transaction() as holder:
            holder.tokens.consume(seeded.tokens[0].id, now=NOW)  # row locked until rollback
            with pytest.raises(StorageError) as caught, uow.transaction() as tx:
                tx.tokens.consume(seeded.tokens[0].id, now=NOW)
            assert caught.value.transient
        with uow.transaction() as tx:
            pid = tx.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with postgres_engine.connect() as admin:
                admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            with pytest.raises(StorageError) as lost:
                tx.tokens.get(seeded.tokens[0].id)
            assert lost.value.transient
        with uow.transaction() as tx:  # the pool dropped the dead connection
            assert tx.tokens.get(seeded.tokens[0].id) is not None
    finally:
        impatient.dispose()


@pytest.mark.mariadb
def test_mariadb_lock_wait_timeout_is_transient(mariadb_engine: Engine) -> None:
    """R9.4 on MariaDB: error 1205 (lock wait timeout) is transient."""
    seeded = seed_booking(SqlAlchemyUnitOfWork(mariadb_engine))
    impatient = new_mariadb_engine(
        mariadb_engine.url,
        connect_args={"connect_timeout": 3, "init_command": "SET innodb_lock_wait_timeout=1"},
    )
    uow = SqlAlchemyUnitOfWork(impatient)
    try:
        with uow.transaction() as holder:
            holder.tokens.consume(seeded.tokens[0].id, now=NOW)
            with pytest.raises(StorageError) as caught, uow.transaction() as tx:
                tx.tokens.consume(seeded.tokens[0].id, now=NOW)
            assert caught.value.transient
            assert "1205" in str(caught.value)
    finally:
        impatient.dispose()


class _FakeDriverError(Exception):
    """Stands in for a driver exception carrying a SQLSTATE (as psycopg's do)."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [("40001", True), ("40P01", True), ("55P03", True), ("08006", True), ("23505", False)],
)
def test_sqlstate_classification(sqlstate: str, transient: bool) -> None:
    """Serialization failure, deadlock, lock timeout, connection failure: retry; not others."""
    error = sa_exc.OperationalError(
        "UPDATE t SET x = %(p)s", {"p": SECRET_HASH}, _FakeDriverError("boom\nDETAIL: x", sqlstate)
    )
    with pytest.raises(StorageError) as caught, translate_errors():
        raise error
    translated = caught.value
    assert translated.transient is transient
    assert str(translated) == "Storage error (_FakeDriverError): boom"
    assert translated.__cause__ is error


def test_non_storage_exceptions_pass_through() -> None:
    """A bug (not a storage failure) is not disguised as a `StorageError`."""
    with pytest.raises(KeyError), translate_errors():
        raise KeyError("bug")
    bug = ValueError("x")
    with pytest.raises(ValueError) as passed, translate_errors():
        raise bug
    assert passed.value is bug
    with pytest.raises(StorageError) as caught, translate_errors():
        raise sa_exc.TimeoutError("pool")  # the pool had no connection to give in time
    assert caught.value.transient


def test_failed_begin_can_be_retried_on_the_same_transaction(tmp_path: Path) -> None:
    """SQLite: BEGIN IMMEDIATE times out while another writer holds the lock (transient);
    once the lock is released the same transaction object begins and works."""
    path = tmp_path / "retry.db"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.1})
    metadata.create_all(engine)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with SqlAlchemyUnitOfWork(engine).transaction() as tx:
            with pytest.raises(StorageError) as caught:
                tx.guests.get(1)
            assert caught.value.transient
            blocker.execute("ROLLBACK")
            tx.guests.get_or_create("later@example.com", now=NOW, last_request_at=None)
            tx.commit()
    finally:
        blocker.close()
    with SqlAlchemyUnitOfWork(engine).transaction(readonly=True) as tx:
        assert tx.guests.get_by_email("later@example.com") is not None
    engine.dispose()
