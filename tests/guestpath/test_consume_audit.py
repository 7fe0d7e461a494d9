"""§9.7 Every authentication outcome is recorded: a successful consume writes `CONSUME_TOKEN`
in its own transaction; a successful verify writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from magiclink import AuditAction, StorageError, TokenExpiredOrUsed
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import UnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork
from tests.databases import count_statements
from tests.guestpath.harness import ADA, world_on


def test_a_successful_consume_writes_one_consume_token_entry(uow: UnitOfWork) -> None:
    """§9.7: success, the token id in metadata, the token's guest and booking, at `now`."""
    world = world_on(uow)
    booking, raw = world.book(ADA)
    world.clock.advance(timedelta(minutes=3))

    consumed = world.guests.consume_token(raw)

    [entry] = world.audit(AuditAction.CONSUME_TOKEN)
    assert entry.success is True
    assert dict(entry.metadata) == {"token_id": consumed.token.id}
    assert entry.guest_id == consumed.guest.id
    assert entry.resource_id == str(booking.id)
    assert entry.created_at == world.clock.now()
    assert entry.endpoint == "magiclink"


def test_an_inbox_link_consumed_for_a_booking_is_audited_on_that_booking(
    uow: UnitOfWork,
) -> None:
    """§9.7 with §9.1: the entry names the booking the link was consumed for; without a
    booking it names none."""
    world = world_on(uow)
    booking, _ = world.book(ADA)
    scoped = world.guests.request_inbox_link(ADA)
    plain = world.guests.request_inbox_link(ADA)

    world.guests.consume_token(scoped.raw, booking_id=booking.id)
    world.guests.consume_token(plain.raw)

    entries = world.audit(AuditAction.CONSUME_TOKEN)
    by_token = {entry.metadata["token_id"]: entry.resource_id for entry in entries}
    assert by_token == {scoped.token_id: str(booking.id), plain.token_id: None}


def test_refusals_and_verifications_write_no_consume_entry(uow: UnitOfWork) -> None:
    """A successful verify writes nothing at all (§9.7, scanner-safe); a refused consume
    writes its `VERIFY_TOKEN` refusal only."""
    world = world_on(uow)
    _, raw = world.book(ADA)
    before = world.audit()

    world.guests.verify_token(raw)
    assert world.audit() == before

    world.guests.consume_token(raw)
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.consume_token(raw)
    assert len(world.audit(AuditAction.CONSUME_TOKEN)) == 1
    assert [e.metadata["reason"] for e in world.audit(AuditAction.VERIFY_TOKEN)] == ["used"]


def test_the_entry_lands_with_the_consumption_or_neither_does(uow: UnitOfWork) -> None:
    """§9.7 "in its own transaction": when the audit write fails the consumption is rolled
    back with it (the link stays usable); one transaction, no extra one."""
    faulty = FaultyUnitOfWork(uow, count_begins=True)
    world = world_on(faulty)
    _, raw = world.book(ADA)
    faulty.calls.clear()
    faulty.arm(1, match="audit.add_many", times=2)  # the attempt and its retry, if any

    with pytest.raises(StorageError):
        world.guests.consume_token(raw)

    faulty.disarm()
    assert world.token(raw).used_at is None
    assert world.audit(AuditAction.CONSUME_TOKEN) == []
    faulty.calls.clear()
    world.guests.consume_token(raw)
    assert faulty.calls.count("transaction") == 1
    assert faulty.calls.index("tokens.consume") < faulty.calls.index("audit.add_many")
    assert len(world.audit(AuditAction.CONSUME_TOKEN)) == 1


def test_the_entry_costs_one_insert_in_the_consume_transaction(any_engine: Engine) -> None:
    """On SQLite and MariaDB: a consume is the lookup, the conditional UPDATE and the audit
    INSERT — one transaction (one BEGIN/COMMIT pair). On PostgreSQL the consume of a good link
    is one statement in all, lookup, UPDATE and INSERT (a data-modifying CTE, no BEGIN:
    issue 15.1)."""
    world = world_on(SqlAlchemyUnitOfWork(any_engine))
    _, raw = world.book(ADA)

    with count_statements(any_engine) as log:
        world.guests.consume_token(raw)

    verbs = [s.lstrip().split(None, 1)[0].upper() for s in log.work]
    postgres = any_engine.dialect.name == "postgresql"
    if postgres:
        assert verbs == ["WITH"]
        assert "UPDATE magiclink_tokens" in log.work[-1]
    else:
        assert verbs == ["SELECT", "UPDATE", "INSERT"]
    assert "INSERT INTO magiclink_audit_log" in log.work[-1]
    control = [s for s in log.statements if s not in log.work]
    begins = sum(s.lstrip().upper().startswith("BEGIN") for s in control)
    assert begins == 0 if postgres else begins <= 1


def test_an_issued_token_and_its_entry_are_one_statement_on_postgres(any_engine: Engine) -> None:
    """Issue 15.1: `request_inbox_link` stores its token and `CREATE_TOKEN` entry with
    `Transaction.add_token_with_audit`: one data-modifying CTE on PostgreSQL, the two INSERTs
    elsewhere; the entry is the one `NewAuditEntry.of_token` makes (guest, token id, path)."""
    world = world_on(SqlAlchemyUnitOfWork(any_engine))
    world.inbox(ADA)  # the guest exists: the request claims its slot

    with count_statements(any_engine) as log:
        issued = world.guests.request_inbox_link(ADA)

    inserts = [s for s in log.work if "INSERT INTO" in s]
    if any_engine.dialect.name == "postgresql":
        assert len(inserts) == 1 and inserts[0].lstrip().startswith("WITH")
        assert "INSERT INTO magiclink_tokens" in inserts[0]
        assert "INSERT INTO magiclink_audit_log" in inserts[0]
    else:
        assert ["magiclink_tokens" in s for s in inserts] == [True, False]
    created = world.audit(AuditAction.CREATE_TOKEN)[0]
    assert (created.guest_id, created.resource_id) == (issued.guest_id, None)
    assert created.metadata == {"token_id": issued.token_id, "path": "inbox"}


def test_a_fault_anywhere_in_a_consume_is_checked_through_landed(uow: UnitOfWork) -> None:
    """Issue 15 and R9.4: a consume's one write may commit by itself (PostgreSQL runs it in
    AUTOCOMMIT), so a transient fault anywhere in it is an ambiguous commit: before the work
    runs again the runner looks for this call's own `CONSUME_TOKEN` entry (its operation
    id); the link is consumed once."""
    faulty = FaultyUnitOfWork(uow)
    world = world_on(faulty)
    _, raw = world.book(ADA)
    faulty.clear_calls()
    faulty.arm(1, transient=True, match="tokens.lookup")

    world.guests.consume_token(raw)

    assert faulty.calls[:3] == ["tokens.lookup", "audit.by_operation", "tokens.lookup"]
    assert len(world.audit(AuditAction.CONSUME_TOKEN)) == 1
    assert world.token(raw).used_at is not None
