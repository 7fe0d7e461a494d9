"""Issue 15.1: a guest's inbox link in one statement where the dialect can, and the same
outcomes as the general path everywhere.

On PostgreSQL, with no hourly cap and no supersede, `request_inbox_link` of an existing,
unblocked guest outside the interval is one data-modifying CTE (`claim_and_add_inbox_token`)
that commits by itself. Everyone else — a first request, a guest within the interval, a
blocked guest — takes the general path after that statement matched nothing, with the
general path's error and nothing written. SQLite and MariaDB always take the general path.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from magiclink import AccessDenied, GuestService, RateLimited, Settings
from magiclink.adapters.memory import ManualClock
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.testing.contract_concurrency import released_together
from tests.databases import count_statements
from tests.integration.seed import NOW

INTERVAL = timedelta(minutes=1)
NO_CAP = Settings(request_interval=INTERVAL, max_links_per_hour=None)


def _guests(engine: Engine, settings: Settings = NO_CAP) -> tuple[GuestService, ManualClock]:
    clock = ManualClock(NOW)
    return GuestService(SqlAlchemyUnitOfWork(engine), clock=clock, settings=settings), clock


def test_a_known_guests_inbox_link_is_one_statement_on_postgresql_15_1(
    any_engine: Engine,
) -> None:
    """The second request (outside the interval) is one statement on PostgreSQL and stores
    exactly what the general path stores: the token, its entry, the claimed slot."""
    guests, clock = _guests(any_engine)
    first = guests.request_inbox_link("Guest@Example.com")
    clock.advance(INTERVAL)
    with count_statements(any_engine) as log:
        second = guests.request_inbox_link("guest@example.com")
    one_statement = any_engine.dialect.name == "postgresql"
    assert (log.count == 1) is one_statement, log.statements
    assert second.guest_id == first.guest_id and second.email == "guest@example.com"
    assert guests.verify_token(second.raw).token.id == second.token_id
    guest = guests.get_guest("guest@example.com")
    assert guest is not None and guest.last_request_at == clock.now()
    created = [e for e in guests.audit_trail(guest_id=first.guest_id) if e.success]
    assert sorted(e.metadata["token_id"] for e in created) == [first.token_id, second.token_id]
    assert {e.metadata["path"] for e in created} == {"inbox"}


def test_refusals_and_first_requests_take_the_general_path_15_1(any_engine: Engine) -> None:
    """Within the interval: `RateLimited`; blocked: `AccessDenied`; each writes nothing (no
    token, no entry, the slot unchanged). A first request creates the guest as ever."""
    guests, clock = _guests(any_engine)
    first = guests.request_inbox_link("guest@example.com")

    def state() -> tuple[object, ...]:
        guest = guests.get_guest("guest@example.com")
        trail = guests.audit_trail(guest_id=first.guest_id)
        return guests.token_stats(), guest, [entry.id for entry in trail]

    before = state()
    with pytest.raises(RateLimited):
        guests.request_inbox_link("guest@example.com")
    assert state() == before
    guests.block_guest("guest@example.com")  # which kills the live link, with its entry
    clock.advance(INTERVAL)
    blocked = state()
    with pytest.raises(AccessDenied):
        guests.request_inbox_link("guest@example.com")
    assert state() == blocked
    other = guests.request_inbox_link("other@example.com")
    assert other.guest_id != first.guest_id


def test_with_an_hourly_cap_the_general_path_counts_15_1(any_engine: Engine) -> None:
    """§9.4: with a cap the one statement is not tried (its count would need a snapshot
    after the claim): the cap still refuses the request over it."""
    settings = Settings(request_interval=timedelta(0), max_links_per_hour=2)
    guests, clock = _guests(any_engine, settings)
    for _ in range(2):
        guests.request_inbox_link("capped@example.com")
        clock.advance(timedelta(seconds=1))
    with count_statements(any_engine) as log, pytest.raises(RateLimited):
        guests.request_inbox_link("capped@example.com")
    assert log.count > 1


def test_racing_requests_of_one_guest_issue_one_link_15_1(any_engine: Engine) -> None:
    """R9 / §9.4: eight threads request at the same instant, after the interval: the guest
    row's claim lets exactly one through; the others are `RateLimited`."""
    guests, clock = _guests(any_engine)
    guests.request_inbox_link("racer@example.com")
    clock.advance(INTERVAL)
    issued, errors = released_together(
        lambda: guests.request_inbox_link("racer@example.com"), threads=8
    )
    assert len(issued) == 1
    assert [type(error) for error in errors] == [RateLimited] * 7
    assert guests.token_stats().live == 2
