"""R6: the shipped Alembic migrations build exactly `metadata`, and upgrading a database that
holds live links never invalidates them (R6.1, R6.6); lifecycle events still reach them (R6.3).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from magiclink import (
    BookingService,
    BookingStatus,
    GuestService,
    InvalidationReason,
    Requester,
    TokenExpiredOrUsed,
)
from magiclink.adapters.memory import InMemoryNotifier, ManualClock
from magiclink.adapters.sqlalchemy import (
    VERSION_TABLE,
    SqlAlchemyUnitOfWork,
    alembic_config,
    create_schema,
    current_revision,
    metadata,
    upgrade_to,
    upgrade_to_head,
)
from magiclink.testing import hash_token
from tests.databases import isolated_mariadb_engine, isolated_postgres_engine, sqlite_file_engine
from tests.integration.seed import NOW, TTL

HEAD_REVISION = "0007"  # booking operation ids (issue 12.2)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    ]
)
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on a database (or schema) with no table at all, private to the test."""
    if request.param == "sqlite":
        with sqlite_engine_in(tmp_path) as engine:
            yield engine
    elif request.param == "postgres":
        with isolated_postgres_engine() as engine:
            yield engine
    else:
        with isolated_mariadb_engine() as engine:
            yield engine


@contextmanager
def sqlite_engine_in(directory: Path) -> Iterator[sa.Engine]:
    """A SQLite file engine in `directory`, disposed on exit."""
    engine = sqlite_file_engine(directory)
    try:
        yield engine
    finally:
        engine.dispose()


def schema_differences(engine: sa.Engine) -> list[object]:
    """What Alembic's autogenerate would change to make the database match `metadata`."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        return list(compare_metadata(context, metadata))


def test_history_is_linear_and_ends_at_head() -> None:
    """One head; 0001 is the original plan's schema, 0002 adds the booking revision."""
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD_REVISION]
    assert [r.revision for r in script.walk_revisions()] == [
        "0007",
        "0006",
        "0005",
        "0004",
        "0002",
        "0001",
    ]


def test_migrations_build_exactly_metadata(empty_engine: sa.Engine) -> None:
    """Upgrading an empty database to head gives the schema `create_schema` gives: Alembic's
    comparison finds nothing to change (and does notice a change when there is one)."""
    assert current_revision(empty_engine) is None
    upgrade_to_head(empty_engine)
    assert current_revision(empty_engine) == HEAD_REVISION
    assert schema_differences(empty_engine) == []
    upgrade_to_head(empty_engine)  # idempotent
    assert current_revision(empty_engine) == HEAD_REVISION
    drop_index = "DROP INDEX ix_magiclink_tokens_expires_at"
    if empty_engine.dialect.name == "mysql":
        drop_index += " ON magiclink_tokens"
    with empty_engine.begin() as connection:
        connection.execute(sa.text(drop_index))
    differences = schema_differences(empty_engine)
    assert len(differences) == 1 and "ix_magiclink_tokens_expires_at" in str(differences)


def test_create_schema_records_head(empty_engine: sa.Engine) -> None:
    """`create_schema` on a new database records the head, so upgrading later works."""
    create_schema(empty_engine)
    assert current_revision(empty_engine) == HEAD_REVISION
    assert schema_differences(empty_engine) == []
    create_schema(empty_engine)  # idempotent
    upgrade_to_head(empty_engine)
    assert current_revision(empty_engine) == HEAD_REVISION


# The original plan's token table, as it was at revision 0001 (no booking_revision).
_guests = sa.table(
    "magiclink_guests",
    sa.column("id"),
    sa.column("normalized_email"),
    sa.column("blocked"),
    sa.column("last_request_at"),
    sa.column("created_at"),
)
_bookings = sa.table(
    "magiclink_bookings",
    sa.column("id"),
    sa.column("uid"),
    sa.column("mentor_id"),
    sa.column("guest_email"),
    sa.column("start_time"),
    sa.column("end_time"),
    sa.column("status"),
    sa.column("revision"),
)
_old_tokens = sa.table(
    "magiclink_tokens",
    sa.column("id"),
    sa.column("token_hash"),
    sa.column("guest_id"),
    sa.column("booking_id"),
    sa.column("expires_at"),
    sa.column("used_at"),
    sa.column("invalidated"),
    sa.column("invalidation_reason"),
    sa.column("created_at"),
)


def _stored_time(engine: sa.Engine, value: datetime) -> datetime:
    # Raw rows bypass UTCDateTime: store what it would store (naive UTC off PostgreSQL).
    return value if engine.dialect.name == "postgresql" else value.replace(tzinfo=None)


def _fill_original_plan_tables(engine: sa.Engine) -> dict[str, str]:
    """Rows written by the original plan at revision 0001; the raw tokens by role."""
    # A raw token is 32 random bytes as 64 hex digits (§2), as the library generates them.
    raws = {role: secrets.token_hex(32) for role in ("live", "inbox", "expired", "orphan")}

    def t(value: datetime) -> datetime:
        return _stored_time(engine, value)

    with engine.begin() as connection:
        connection.execute(
            _guests.insert(),
            [
                {
                    "id": 1,
                    "normalized_email": "legacy@example.com",
                    "blocked": False,
                    "last_request_at": None,
                    "created_at": t(NOW),
                }
            ],
        )
        connection.execute(
            _bookings.insert(),
            [
                {
                    "id": 10,
                    "uid": "legacy-booking",
                    "mentor_id": 7,
                    "guest_email": "legacy@example.com",
                    "start_time": t(NOW + timedelta(days=1)),
                    "end_time": t(NOW + timedelta(days=1, minutes=15)),
                    "status": "scheduled",
                    "revision": 3,  # rescheduled three times before the upgrade
                }
            ],
        )
        expiry = {"live": NOW + TTL, "inbox": NOW + TTL, "expired": NOW, "orphan": NOW + TTL}
        booking = {"live": 10, "inbox": None, "expired": 10, "orphan": 99}
        connection.execute(
            _old_tokens.insert(),
            [
                {
                    "id": n,
                    "token_hash": hash_token(raws[role]),
                    "guest_id": 1,
                    "booking_id": booking[role],
                    "expires_at": t(expiry[role]),
                    "used_at": None,
                    "invalidated": False,
                    "invalidation_reason": None,
                    "created_at": t(NOW - timedelta(minutes=1)),
                }
                for n, role in enumerate(raws, start=1)
            ],
        )
    return raws


def test_upgrade_never_invalidates_live_tokens(empty_engine: sa.Engine) -> None:
    """R6.1/R6.2/R6.6: links issued before the upgrade work after it; the new revision column
    is filled from the booking's current revision (NULL where the booking is gone); R6.3: a
    lifecycle event after the upgrade invalidates those pre-existing links too."""
    upgrade_to(empty_engine, "0001")
    assert current_revision(empty_engine) == "0001"
    raws = _fill_original_plan_tables(empty_engine)

    upgrade_to_head(empty_engine)

    assert current_revision(empty_engine) == HEAD_REVISION
    uow = SqlAlchemyUnitOfWork(empty_engine)
    with uow.transaction(readonly=True) as tx:
        revisions = {
            role: tx.tokens.lookup(hash_token(raw)).token.booking_revision  # type: ignore[union-attr]
            for role, raw in raws.items()
        }
    assert revisions == {"live": 3, "inbox": None, "expired": 3, "orphan": None}
    service = GuestService(uow, clock=ManualClock(NOW + timedelta(minutes=1)))
    assert service.verify_token(raws["live"]).token.booking_id == 10
    assert service.verify_token(raws["inbox"]).token.booking_id is None
    for dead in ("expired", "orphan"):  # refused before the upgrade too (§5.4: booking gone)
        with pytest.raises(TokenExpiredOrUsed):
            service.verify_token(raws[dead])
    assert service.consume_token(raws["inbox"]).token.used_at is not None
    assert service.invalidate_tokens_by_booking_id(10, InvalidationReason.BOOKING_CANCELLED) == 2
    with pytest.raises(TokenExpiredOrUsed):
        service.verify_token(raws["live"])


def test_0005_keeps_every_live_link_and_then_revokes_by_event(empty_engine: sa.Engine) -> None:
    """R6.1 / §8.4: revision 0005 gives every stored booking and token link generation 0, so
    the links live at upgrade time stay live; an event after the upgrade (a rating) then
    refuses them as `links_revoked` even though no batch invalidation ran (rows were written
    with explicit ids, so no new token is issued here: tests/actions covers R3.4)."""
    upgrade_to(empty_engine, "0004")
    raws = _fill_original_plan_tables_at_0004(empty_engine)

    upgrade_to_head(empty_engine)

    uow = SqlAlchemyUnitOfWork(empty_engine)
    clock = ManualClock(NOW + timedelta(minutes=1))
    guests = GuestService(uow, clock=clock)
    for raw in raws:
        assert guests.verify_token(raw).token.link_generation == 0
    with uow.transaction() as tx:  # the event alone, as its transaction writes it (§8.4)
        tx.bookings.revoke_links(10)
        tx.commit()
    for raw in raws:
        with pytest.raises(TokenExpiredOrUsed):
            guests.verify_token(raw)
    reasons = {e.metadata["reason"] for e in guests.audit_trail(booking_id=10, limit=10)}
    assert reasons == {"links_revoked"}


def _booking_columns(engine: sa.Engine) -> dict[str, dict[str, object]]:
    return {c["name"]: dict(c) for c in sa.inspect(engine).get_columns("magiclink_bookings")}


def test_0007_adds_a_nullable_booking_operation_id_and_keeps_the_rows(
    empty_engine: sa.Engine,
) -> None:
    """Issue 12.2 / R6.1: revision 0007 adds `magiclink_bookings.operation_id`, nullable and
    without a default, to a database at 0006: the stored booking keeps every value and reads
    back with no operation id, its live link still works, and the next booking write stores
    its call's id. Its downgrade drops the column again and keeps the rows (SQLite rebuilds
    the table)."""
    upgrade_to(empty_engine, "0006")
    assert "operation_id" not in _booking_columns(empty_engine)
    raws = _fill_original_plan_tables(empty_engine)

    upgrade_to(empty_engine, "0007")

    assert current_revision(empty_engine) == "0007"
    assert _booking_columns(empty_engine)["operation_id"]["nullable"] is True
    uow = SqlAlchemyUnitOfWork(empty_engine)
    clock = ManualClock(NOW + timedelta(minutes=1))
    guests = GuestService(uow, clock=clock)
    with uow.transaction(readonly=True) as tx:
        before = tx.bookings.get(10)
    assert before is not None
    assert (before.uid, before.revision, before.operation_id) == ("legacy-booking", 3, None)
    assert guests.verify_token(raws["live"]).token.booking_id == 10
    bookings = BookingService(uow, guests, notifier=InMemoryNotifier(), clock=clock)
    cancelled = bookings.cancel_session(10, "ill", "mentor", Requester.system())
    with uow.transaction(readonly=True) as tx:
        after = tx.bookings.get(10)
    assert after is not None and after.operation_id is not None
    assert after.operation_id == cancelled.operation_id

    with empty_engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0006")
    assert current_revision(empty_engine) == "0006"
    assert "operation_id" not in _booking_columns(empty_engine)
    with empty_engine.connect() as connection:
        kept = connection.execute(sa.text("SELECT uid, status FROM magiclink_bookings")).all()
    assert [tuple(row) for row in kept] == [("legacy-booking", str(BookingStatus.CANCELLED))]
    upgrade_to_head(empty_engine)
    assert schema_differences(empty_engine) == []


def _fill_original_plan_tables_at_0004(engine: sa.Engine) -> list[str]:
    """The original plan's rows, upgraded to 0004 (tokens carry booking_revision 3)."""
    raws = _fill_original_plan_tables(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE magiclink_tokens SET booking_revision = 3"))
    return [raws["live"]]


def test_unversioned_original_tables_are_recognised(tmp_path: Path) -> None:
    """Tables of the original plan created outside Alembic (no history) are recognised as
    revision 0001, stamped, and upgraded in place, keeping their rows."""
    with sqlite_engine_in(tmp_path) as engine:
        upgrade_to(engine, "0001")
        raws = _fill_original_plan_tables(engine)
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
        assert current_revision(engine) is None
        upgrade_to_head(engine)
        assert current_revision(engine) == HEAD_REVISION
        assert schema_differences(engine) == []
        service = GuestService(SqlAlchemyUnitOfWork(engine), clock=ManualClock(NOW))
        assert service.verify_token(raws["live"]).token.booking_revision == 3


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_downgrade_to_original_plan_and_back(kind: str, tmp_path: Path) -> None:
    """The 0002 downgrade drops the column (SQLite rebuilds the table) and keeps the rows."""
    with isolated_postgres_engine() if kind == "postgres" else sqlite_engine_in(tmp_path) as engine:
        upgrade_to(engine, "0001")
        raws = _fill_original_plan_tables(engine)
        upgrade_to_head(engine)
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0001")
        assert current_revision(engine) == "0001"
        columns = {c["name"] for c in sa.inspect(engine).get_columns("magiclink_tokens")}
        assert "booking_revision" not in columns
        upgrade_to_head(engine)
        service = GuestService(SqlAlchemyUnitOfWork(engine), clock=ManualClock(NOW))
        assert service.verify_token(raws["live"]).token.booking_revision == 3


def test_hosts_own_alembic_history_is_untouched(tmp_path: Path) -> None:
    """magiclink keeps its history in its own table, not the host's `alembic_version`."""
    with sqlite_engine_in(tmp_path) as engine:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
            connection.execute(sa.text("INSERT INTO alembic_version VALUES ('hostrev')"))
        upgrade_to_head(engine)
        with engine.connect() as connection:
            host = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        assert host == [("hostrev",)]
        assert current_revision(engine) == HEAD_REVISION
