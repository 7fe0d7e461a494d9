"""What the two options cost, counted on SQLite with `before_cursor_execute`.

`supersede_previous_links` adds one UPDATE to every issue (its audit row joins the issue's
batched INSERT); `revoke_on_reuse` adds one UPDATE to the refusal of a used link (its audit
row joins the refusal's batched INSERT) and nothing anywhere else. Both stay constant in the
number of links they revoke (R10.5)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from magiclink import AuditAction, MagicLinkError, Requester
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from tests.databases import count_statements
from tests.security.harness import MENTOR, Link, World

ADA = "ada@example.com"

Action = Callable[[World], object]


def sent_by(engine: Engine, world: World, action: Action) -> list[str]:
    """The statements `action` sends, transaction control (BEGIN...) left out.

    A refusal is an expected outcome here, not a failure.
    """
    with count_statements(engine) as log, contextlib.suppress(MagicLinkError):
        action(world)
    return [" ".join(statement.split()) for statement in log.work]


def extra(on: list[str], off: list[str]) -> list[str]:
    """Statements sent with the option on that were not sent with it off (none may vanish)."""
    assert not Counter(off) - Counter(on)
    return list((Counter(on) - Counter(off)).elements())


def is_token_update(statement: str) -> bool:
    return statement.startswith("UPDATE magiclink_tokens SET")


def audit_inserts(sent: list[str]) -> int:
    return sum(s.startswith("INSERT INTO magiclink_audit_log") for s in sent)


@pytest.fixture
def world(sqlite_engine: Engine) -> World:
    return World.over(SqlAlchemyUnitOfWork(sqlite_engine))


def booking_with_links(world: World, links: int) -> int:
    booking, _ = world.book_link(ADA)
    for _ in range(links - 1):
        world.system(ADA, booking.id)
    return booking.id


# Each path, and how many earlier live links its first superseding issue finds below: three
# booking links (or two inbox links) from the set-up, plus the one issued with the option off.
ISSUES: dict[str, tuple[Callable[[int], Action], int]] = {
    "request_inbox_link": (lambda _: lambda w: w.inbox(ADA), 3),
    "request_inbox_link(booking)": (lambda b: lambda w: w.inbox(ADA, b), 4),
    "issue_booking_link": (lambda b: lambda w: w.guests.issue_booking_link(ADA, b), 4),
    "generate_token_for_rescheduled_booking": (
        lambda b: lambda w: w.guests.generate_token_for_rescheduled_booking(ADA, b),
        4,
    ),
    "book_session": (  # a new booking each time: nothing earlier, the UPDATE still runs
        lambda _: lambda w: w.bookings.book_session(MENTOR, ADA, w.clock.now() + timedelta(days=1)),
        0,
    ),
}


@pytest.mark.parametrize("path", ISSUES)
def test_supersede_adds_one_update_to_every_issue_whatever_it_revokes(
    sqlite_engine: Engine, world: World, path: str
) -> None:
    booking_id = booking_with_links(world, 3)
    world.inbox(ADA)
    world.inbox(ADA)
    make, earlier = ISSUES[path]
    issue = make(booking_id)
    off = sent_by(sqlite_engine, world, issue)
    on_world = world.redeployed(supersede_previous_links=True)

    many = sent_by(sqlite_engine, on_world, issue)
    one = sent_by(sqlite_engine, on_world, issue)

    [added] = extra(many, off)
    assert is_token_update(added)
    assert many == one
    assert audit_inserts(many) == audit_inserts(off) == 1
    counts = [e.metadata["count"] for e in on_world.entries(AuditAction.INVALIDATE_TOKEN)]
    assert counts == ([1, earlier] if earlier else [])


def used_link(world: World) -> Link:
    booking, link = world.book_link(ADA)
    world.guests.consume_token(link.raw)
    world.system(ADA, booking.id)
    world.system(ADA, booking.id)  # two live siblings for revoke_on_reuse to kill
    return link


@pytest.mark.parametrize("operation", ["verify_token", "consume_token"])
def test_revoke_on_reuse_adds_one_update_to_the_refusal_of_a_used_link(
    sqlite_engine: Engine, world: World, operation: str
) -> None:
    link = used_link(world)
    on_world = world.redeployed(revoke_on_reuse=True, reuse_grace=timedelta(0))  # §9.8

    def present(w: World) -> object:
        return getattr(w.guests, operation)(link.raw)

    off = sent_by(sqlite_engine, world, present)
    revoking = sent_by(sqlite_engine, on_world, present)
    idle = sent_by(sqlite_engine, on_world, present)

    [added] = extra(revoking, off)
    assert is_token_update(added)
    assert revoking == idle
    assert audit_inserts(revoking) == audit_inserts(off) == 1  # VERIFY + INVALIDATE rows
    counts = [e.metadata["count"] for e in on_world.entries(AuditAction.INVALIDATE_TOKEN)]
    assert counts == [2]  # the first presentation revoked both siblings, the second nothing


def live(world: World) -> Link:
    return world.book_link(ADA)[1]


def expired(world: World) -> Link:
    link = world.book_link(ADA)[1]
    world.clock.advance(world.settings.token_ttl)
    return link


def cancelled(world: World) -> Link:
    booking, link = world.book_link(ADA)
    world.bookings.cancel_session(booking.id, "", "mentor", Requester(user_id=MENTOR))
    return link


@pytest.mark.parametrize("make", [live, expired, cancelled])
@pytest.mark.parametrize("operation", ["verify_token", "consume_token"])
def test_revoke_on_reuse_costs_nothing_outside_the_refusal_of_a_used_link(
    sqlite_engine: Engine, world: World, operation: str, make: Callable[[World], Link]
) -> None:
    on_world = world.redeployed(revoke_on_reuse=True)
    off_link, on_link = make(world), make(on_world)
    on_world.clock.set(world.clock.now())

    off = sent_by(sqlite_engine, world, lambda w: getattr(w.guests, operation)(off_link.raw))
    on = sent_by(sqlite_engine, on_world, lambda w: getattr(w.guests, operation)(on_link.raw))

    assert on == off
