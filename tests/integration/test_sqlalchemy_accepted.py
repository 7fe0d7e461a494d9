"""Issue 15.1: the one-statement consume accepts exactly the links verification accepts.

`Transaction.consume_if_accepted` puts R7 (a guest not blocked; the token live; its booking
open, at the token's revision and link generation) and §9.1 (the booking scope) into the
WHERE of one data-modifying CTE on PostgreSQL. Writing rules twice is how they drift, so a
property checks the statement against the domain itself: for any drawn state of guest, token,
booking and scope, the statement consumes the link exactly when `verify_token` (the domain's
rules, in their order) accepts it, and then writes exactly `entry.of_token(token)`; when it
does not, it changes nothing. Elsewhere (SQLite, MariaDB) the statement does not exist: the
call changes nothing, always, and the general path consumes.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Final

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from magiclink import (
    AccessDenied,
    AuditAction,
    BookingStatus,
    InvalidationReason,
    TokenExpiredOrUsed,
)
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import NewAuditEntry, TokenLookup
from magiclink.testing import World, hash_token
from tests.integration.seed import NOW

MISSING_ID: Final = 10**12
"""A booking id no test stores (tokens keep no foreign key to a host's bookings)."""


@attrs.frozen
class Case:
    """One drawn state: the guest, the token, its booking and the scope asked for."""

    blocked: bool
    bound: bool
    token_state: str
    booking_status: BookingStatus
    token_revision: str
    generation_moved: bool
    booking_missing: bool
    scope: str
    scope_status: BookingStatus


cases = st.builds(
    Case,
    blocked=st.booleans(),
    bound=st.booleans(),
    token_state=st.sampled_from(["live", "used", "invalidated", "expired"]),
    booking_status=st.sampled_from(list(BookingStatus)),
    token_revision=st.sampled_from(["current", "none", "older"]),
    generation_moved=st.booleans(),
    booking_missing=st.booleans(),
    scope=st.sampled_from(["none", "own", "same address", "other address", "missing"]),
    scope_status=st.sampled_from(list(BookingStatus)),
)

_serial = itertools.count()


def _store(world: World, case: Case) -> tuple[str, int | None]:
    """Store the case's rows through the ports; the raw token and the scope to ask for."""
    n = next(_serial)
    email = f"guest{n}@example.com"
    booking = world.store_booking(email, revision=3)
    booking_id = None
    if case.bound:
        booking_id = MISSING_ID + n if case.booking_missing else booking.id
    expired = case.token_state == "expired"
    raw = world.store_token(
        email,
        booking_id=booking_id,
        booking_revision=None if case.token_revision == "none" else booking.revision,
        expires_in=-timedelta(seconds=1) if expired else None,
    )
    token = world.token(raw)
    with world.uow.transaction() as tx:
        if case.token_state == "used":
            assert tx.tokens.consume(token.id, now=NOW - timedelta(seconds=30))
        if case.token_state == "invalidated":
            reason = InvalidationReason.BOOKING_CANCELLED
            assert tx.tokens.invalidate(token.id, reason=reason, now=NOW) is not None
        moved = booking.revision + (case.token_revision == "older")  # rescheduled since
        tx.bookings.update(attrs.evolve(booking, status=case.booking_status, revision=moved))
        if case.generation_moved:
            tx.bookings.revoke_links(booking.id)
        if case.blocked:
            tx.guests.set_blocked(token.guest_id, True)
        tx.commit()
    return raw, _scope(world, case, booking.id, email, n)


def _scope(world: World, case: Case, own: int, email: str, n: int) -> int | None:
    if case.scope == "none":
        return None
    if case.scope == "own":
        return own
    if case.scope == "missing":
        return MISSING_ID + 10**6 + n
    address = email if case.scope == "same address" else f"stranger{n}@example.com"
    return world.store_booking(address, status=case.scope_status, ahead=timedelta(days=2)).id


def _verification_accepts(world: World, raw: str, scope: int | None) -> bool:
    """What the domain decides (verify is read-only: it consumes nothing)."""
    try:
        world.guests.verify_token(raw, booking_id=scope)
    except (AccessDenied, TokenExpiredOrUsed):
        return False
    return True


def _template(scope: int | None, operation_id: str) -> NewAuditEntry:
    resource = None if scope is None else str(scope)
    return NewAuditEntry(
        None, "magiclink", AuditAction.CONSUME_TOKEN, resource, True, {}, NOW, operation_id
    )


GOOD: Final = Case(
    blocked=False,
    bound=True,
    token_state="live",
    booking_status=BookingStatus.SCHEDULED,
    token_revision="current",
    generation_moved=False,
    booking_missing=False,
    scope="none",
    scope_status=BookingStatus.SCHEDULED,
)
INBOX: Final = attrs.evolve(GOOD, bound=False)
_OPEN: Final = {BookingStatus.SCHEDULED, BookingStatus.COMPLETED}
# Each rule by itself, with the answer R7 and §9.1 give: the good link with one thing changed
# (a draw may miss a rare one).
ONE_CHANGE: Final = [
    (GOOD, True),
    (INBOX, True),
    (attrs.evolve(GOOD, blocked=True), False),
    (attrs.evolve(INBOX, blocked=True), False),
    *((attrs.evolve(GOOD, token_state=s), False) for s in ("used", "invalidated", "expired")),
    *((attrs.evolve(INBOX, token_state=s), False) for s in ("used", "invalidated", "expired")),
    *((attrs.evolve(GOOD, booking_status=s), s in _OPEN) for s in BookingStatus),
    (attrs.evolve(GOOD, token_revision="older"), False),
    (attrs.evolve(GOOD, token_revision="none", booking_status=BookingStatus.COMPLETED), True),
    (attrs.evolve(GOOD, generation_moved=True), False),
    (attrs.evolve(GOOD, booking_missing=True), False),
    (attrs.evolve(GOOD, scope="own"), True),
    *((attrs.evolve(GOOD, scope=scope), False) for scope in ("same address", "missing")),
    (attrs.evolve(INBOX, scope="own"), True),
    *((attrs.evolve(INBOX, scope=scope), False) for scope in ("other address", "missing")),
    *(
        (attrs.evolve(INBOX, scope="same address", scope_status=s), s in _OPEN)
        for s in BookingStatus
    ),
    (attrs.evolve(INBOX, scope="own", booking_status=BookingStatus.CANCELLED), False),
]


def _changed(value: object) -> str:
    """A case's test id: what differs from the good (booking-bound) link."""
    if not isinstance(value, Case):
        return "accepted" if value else "refused"
    good = attrs.asdict(GOOD)
    return ",".join(f"{k}={v}" for k, v in attrs.asdict(value).items() if good[k] != v) or "good"


@pytest.mark.parametrize(("case", "accepted"), ONE_CHANGE, ids=_changed)
def test_each_rule_of_the_one_statement_matches_verification(
    any_engine: Engine, case: Case, accepted: bool
) -> None:
    """Issue 15.1, R7, §9.1: each rule by itself; verification answers as the rule says, and
    the statement as verification does (see `check`)."""
    assert check(any_engine, case) is accepted


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases)
def test_the_one_statement_consumes_exactly_what_verification_accepts(
    any_engine: Engine, case: Case
) -> None:
    """Issue 15.1, R7, §9.1: any combination of the rules (see `check`)."""
    # A token of a booking that does not exist cannot be consumed to draw the "used" state.
    assume(not (case.bound and case.booking_missing and case.token_state == "used"))
    check(any_engine, case)


def check(engine: Engine, case: Case) -> bool:
    """On PostgreSQL `consume_if_accepted` consumes a link iff `verify_token` accepts it,
    marks it used at `now` and writes `entry.of_token(token)`; a refused link (or any link
    elsewhere) changes nothing. Each call is rolled back. Whether verification accepted."""
    world = World.build(SqlAlchemyUnitOfWork(engine), start=NOW)
    raw, scope = _store(world, case)
    accepts = _verification_accepts(world, raw, scope)
    operation_id = f"accepted-{next(_serial)}"
    entry = _template(scope, operation_id)
    with world.uow.transaction() as tx:
        before = tx.tokens.lookup(hash_token(raw))
        assert before is not None
        got = tx.consume_if_accepted(hash_token(raw), now=NOW, booking_id=scope, entry=entry)
        after = tx.tokens.lookup(hash_token(raw))
        written = tx.audit.by_operation(operation_id)
        tx.rollback()
    assert after is not None
    if engine.dialect.name == "postgresql":
        assert (got is not None) == accepts, case
    if got is None:
        assert after == before
        assert written == []
        return accepts
    _assert_consumed(got, before, after)
    expected = entry.of_token(before.token)
    assert [(e.guest_id, e.action, e.resource_id, dict(e.metadata)) for e in written] == [
        (expected.guest_id, expected.action, expected.resource_id, dict(expected.metadata))
    ]
    assert written[0].created_at == NOW
    return accepts


def _assert_consumed(got: TokenLookup, before: TokenLookup, after: TokenLookup) -> None:
    """The lookup returned is the one before, with the token marked used at `now`."""
    assert got == attrs.evolve(before, token=attrs.evolve(before.token, used_at=NOW))
    assert after.token.used_at == NOW
