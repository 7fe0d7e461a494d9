"""The correctness properties of SPEC §6 (P1-P9), runnable against any unit of work.

Each property is a function `check_pN(uow_factory, **drawn)`: it calls `uow_factory()` once
to get a *fresh, empty* storage, builds a small world on it through the public services
(`build_world`), exercises the property and raises `PropertyFailed` (an `AssertionError`)
with a readable message when it does not hold. `PROPERTIES` pairs each check with the
hypothesis strategy of its keyword arguments, so a host proves its own adapter with::

    from hypothesis import given, settings
    from magiclink.testing.properties import PROPERTIES

    @settings(max_examples=100)
    @given(args=PROPERTIES["P5"].arguments)
    def test_p5_on_my_adapter(args):
        PROPERTIES["P5"].check(lambda: MyUnitOfWork(make_engine()), **args)

Build the storage inside the test body (the factory), never in a function-scoped fixture:
hypothesis does not reset fixtures between examples.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import attrs
from hypothesis import strategies as st

from magiclink import (
    AuditAction,
    AuditEntry,
    Booking,
    IncidentType,
    InvalidationReason,
    MagicLinkError,
    MagicLinkToken,
    Requester,
    Settings,
    TokenExpiredOrUsed,
)
from magiclink.domain._records import TokenLookup
from magiclink.ports import UNSAVED_ID, UnitOfWork
from magiclink.testing.strategies import (
    EPOCH,
    LifecycleEvent,
    WorldPlan,
    incident_types,
    invalidation_reasons,
    lifecycle_events,
    ratings,
    world_plans,
)
from magiclink.testing.world import Link, raw_from_url
from magiclink.testing.world import World as _World

__all__ = [
    "EVENT_REASONS",
    "LINK_EVENTS",
    "PROPERTIES",
    "DeadKind",
    "Link",
    "Property",
    "PropertyFailed",
    "World",
    "apply_event",
    "apply_link_event",
    "build_world",
    "check_p1",
    "check_p2",
    "check_p3",
    "check_p4",
    "check_p5",
    "check_p6",
    "check_p7",
    "check_p8",
    "check_p9",
    "raw_from_url",
]

UowFactory = Callable[[], UnitOfWork]

EXPIRED_MESSAGE: Final = "Token expired or used"
AUDIT_LIMIT: Final = 10_000
MENTOR_ID: Final = 7

EVENT_REASONS: Final[Mapping[LifecycleEvent, InvalidationReason]] = {
    LifecycleEvent.MENTOR_CANCEL: InvalidationReason.BOOKING_CANCELLED,
    LifecycleEvent.STUDENT_CANCEL: InvalidationReason.BOOKING_CANCELLED,
    LifecycleEvent.NO_SHOW: InvalidationReason.BOOKING_CANCELLED,
    LifecycleEvent.RESCHEDULE: InvalidationReason.BOOKING_RESCHEDULED,
    LifecycleEvent.RATING: InvalidationReason.RATING_SUBMITTED,
    LifecycleEvent.INCIDENT: InvalidationReason.INCIDENT_REPORTED,
}
"""The invalidation reason each lifecycle event must record."""


class PropertyFailed(AssertionError):
    """A SPEC §6 property does not hold; the message says which and why."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PropertyFailed(message)


# ----------------------------------------------------------------------------- the world


@attrs.define
class World(_World):
    """A populated storage and the services over it, plus what the test knows about it."""

    booking_list: list[Booking] = attrs.Factory(list)
    links: list[Link] = attrs.Factory(list)
    last_request: dict[str, datetime] = attrs.Factory(dict)

    @property
    def subject(self) -> Booking:
        """The booking the property is about (the first one built)."""
        return self.booking_list[0]

    def lookup(self, link: Link) -> TokenLookup:
        """The stored token behind `link`, with its guest and booking state."""
        with self.uow.transaction(readonly=True) as tx:
            found = tx.tokens.lookup(link.token_hash)
        _require(found is not None, f"the token of a known link is missing: {link!r}")
        assert found is not None
        return found

    def tokens_of(self, booking_id: int) -> list[MagicLinkToken]:
        """Every stored token of the booking (the service's read)."""
        return self.guests.tokens_for_booking(booking_id)

    def all_tokens(self) -> dict[str, MagicLinkToken]:
        """Every token the test can reach, by hash: booking tokens and known links."""
        tokens = {t.token_hash: t for b in self.booking_list for t in self.tokens_of(b.id)}
        tokens.update({link.token_hash: self.lookup(link).token for link in self.links})
        return tokens

    def request_link(self, email: str, booking_id: int | None) -> Link:
        """Ask for an inbox link, first waiting out the rate limit when needed."""
        last = self.last_request.get(email)
        interval = self.settings.request_interval
        if last is not None and self.clock.now() - last < interval:
            self.clock.advance(interval - (self.clock.now() - last))
        issued = self.guests.request_inbox_link(email, booking_id)
        self.last_request[email] = self.clock.now()
        link = Link(raw=issued.raw, guest_email=email, booking_id=booking_id)
        self.links.append(link)
        return link

    def mailed_link(self, booking: Booking) -> Link:
        """The link last mailed by the notifier, which must be for `booking`."""
        _require(bool(self.sent), "no link was mailed")
        message = self.sent[-1]
        _require(
            message.booking_id == booking.id and message.to == booking.guest_email,
            f"the last mail is not for booking {booking.id}",
        )
        link = Link(raw=raw_from_url(message.url), guest_email=message.to, booking_id=booking.id)
        self.links.append(link)
        return link

    def craft_token(self, email: str, booking: Booking | None) -> Link:
        """Store a token through the ports alone (as a host's own data might hold one)."""
        booking_id = None if booking is None else booking.id
        raw = self.store_token(
            email,
            booking_id=booking_id,
            booking_revision=None if booking is None else booking.revision,
        )
        link = Link(raw=raw, guest_email=email, booking_id=booking_id)
        self.links.append(link)
        return link


def build_world(
    uow_factory: UowFactory,
    plan: WorldPlan,
    *,
    settings: Settings | None = None,
    start: datetime = EPOCH,
) -> World:
    """A fresh storage from `uow_factory`, populated through the services as `plan` says.

    Each booking is booked (which mails its first link), then its steps run: `issue` asks
    for an inbox link for the booking (waiting out the rate limit), `consume` consumes one of
    the booking's links (a refusal is fine: it may have expired), `advance` moves the clock.
    `extra_guests` get tokens on the booking through the ports. Then `inbox_links` inbox-only
    links are issued to the first booking's guest.
    """
    # The properties are not about the hourly cap (§9.4): a plan may ask for more links.
    chosen = settings if settings is not None else Settings(max_links_per_hour=None)
    world = World.build(uow_factory(), start=start, settings=chosen)
    clock = world.clock
    for number, booking_plan in enumerate(plan.bookings):
        outcome = world.bookings.book_session(
            MENTOR_ID + number,
            booking_plan.guest_email,
            clock.now() + timedelta(days=1),
        )
        _require(outcome.link_sent, "book_session did not mail the first link")
        booking = outcome.booking
        world.booking_list.append(booking)
        own = [world.mailed_link(booking)]
        for step in booking_plan.steps:
            if step.action == "issue":
                own.append(world.request_link(booking_plan.guest_email, booking.id))
            elif step.action == "consume":
                with contextlib.suppress(TokenExpiredOrUsed):
                    world.guests.consume_token(own[-1 - step.index % len(own)].raw)
            else:
                clock.advance(step.delta)
        for extra in booking_plan.extra_guests:
            world.craft_token(extra, booking)
    if plan.bookings:
        for _ in range(plan.inbox_links):
            world.request_link(plan.bookings[0].guest_email, None)
    return world


def apply_event(
    world: World,
    event: LifecycleEvent,
    booking: Booking,
    *,
    new_start: datetime | None = None,
    rating: int = 5,
    incident_type: IncidentType = IncidentType.OTHER,
) -> None:
    """Make `event` happen to `booking` through the public services, as its rightful actor."""
    if event is LifecycleEvent.MENTOR_CANCEL:
        world.bookings.cancel_session(
            booking.id, "mentor unavailable", "mentor", Requester(user_id=booking.mentor_id)
        )
    elif event is LifecycleEvent.STUDENT_CANCEL:
        world.bookings.cancel_session(
            booking.id, "", "student", Requester(email=booking.guest_email.upper())
        )
    elif event is LifecycleEvent.NO_SHOW:
        world.bookings.mark_session_as_no_show(booking.id, Requester.system())
    elif event is LifecycleEvent.RESCHEDULE:
        start = new_start if new_start is not None else booking.start_time + timedelta(days=1)
        outcome = world.bookings.reschedule_session(
            booking.id, start, Requester(user_id=booking.mentor_id)
        )
        _require(outcome.link_issued and outcome.link_sent, f"reschedule outcome: {outcome}")
        world.mailed_link(outcome.booking)
    elif event is LifecycleEvent.RATING:
        world.ratings.create_rating(booking.id, "student-profile", rating, "thanks")
    else:
        world.quality.create_incident("mentor-profile", booking.uid, incident_type, "late")


LINK_EVENTS: Final = frozenset(
    {
        LifecycleEvent.STUDENT_CANCEL,
        LifecycleEvent.RESCHEDULE,
        LifecycleEvent.RATING,
        LifecycleEvent.INCIDENT,
    }
)
"""The events a guest can make with a link (SPEC §8.1)."""


def apply_link_event(
    world: World, event: LifecycleEvent, link: Link, *, new_start: datetime
) -> None:
    """Make a guest's `event` happen through its link action (SPEC §8.1) with `link`."""
    if event is LifecycleEvent.STUDENT_CANCEL:
        world.bookings.cancel_with_link(link.raw, "via link")
    elif event is LifecycleEvent.RESCHEDULE:
        outcome = world.bookings.reschedule_with_link(link.raw, new_start)
        _require(outcome.link_issued and outcome.link_sent, f"reschedule outcome: {outcome}")
        world.mailed_link(outcome.booking)
    elif event is LifecycleEvent.RATING:
        world.ratings.rate_with_link(link.raw, 5, "thanks")
    else:
        world.quality.report_with_link(link.raw, IncidentType.LATE, "late")


def _refused(world: World, link: Link, *, consume: bool = False) -> MagicLinkError | None:
    """The error verifying (or consuming) `link` raises, or None when it is accepted."""
    try:
        if consume:
            world.guests.consume_token(link.raw)
        else:
            world.guests.verify_token(link.raw)
    except MagicLinkError as error:
        return error
    return None


def _require_expired_or_used(world: World, link: Link, why: str) -> None:
    for consume in (False, True):
        error = _refused(world, link, consume=consume)
        _require(
            isinstance(error, TokenExpiredOrUsed)
            and str(error) == EXPIRED_MESSAGE
            and error.code == "UNAUTHORIZED",
            f"{why}: {'consume' if consume else 'verify'} of {link!r} gave {error!r}",
        )


def _revoke(world: World, booking: Booking, picks: tuple[int, ...]) -> None:
    """Invalidate some of the booking's tokens one by one (indices taken modulo their count)."""
    tokens = world.tokens_of(booking.id)
    for pick in picks:
        if tokens:
            world.guests.invalidate_token(
                tokens[pick % len(tokens)].id, InvalidationReason.MANUAL_REVOCATION
            )


def _is_dead(token: MagicLinkToken, now: datetime) -> bool:
    return token.invalidated or token.used_at is not None or token.expires_at <= now


def _ids(tokens: Iterable[MagicLinkToken]) -> set[int]:
    return {t.id for t in tokens}


# ---------------------------------------------------------------------------- properties


def check_p1(
    uow_factory: UowFactory,
    *,
    plan: WorldPlan,
    event: LifecycleEvent,
    shift: timedelta,
    rating: int,
    incident_type: IncidentType,
    via_link: bool = False,
) -> None:
    """P1: a lifecycle event leaves every token that existed for its booking invalidated.

    Also: the recorded reason is the event's, every earlier link of the booking is refused
    with `Token expired or used`, and no other booking's tokens changed. With `via_link`, a
    guest's event (cancel, reschedule, rating, incident) is made through the SPEC §8.1 link
    action with a live link of the booking, when it has one.
    """
    world = build_world(uow_factory, plan)
    subject = world.subject
    before = world.tokens_of(subject.id)
    others_before = {b.id: world.tokens_of(b.id) for b in world.booking_list[1:]}
    earlier_links = [link for link in world.links if link.booking_id == subject.id]
    live = [link for link in earlier_links if _refused(world, link) is None]
    if via_link and live and event in LINK_EVENTS:
        apply_link_event(world, event, live[-1], new_start=subject.start_time + shift)
    else:
        apply_event(
            world,
            event,
            subject,
            new_start=subject.start_time + shift,
            rating=rating,
            incident_type=incident_type,
        )
    after = {t.id: t for t in world.tokens_of(subject.id)}
    for token in before:
        now_token = after[token.id]
        _require(
            now_token.invalidated and now_token.invalidation_reason == EVENT_REASONS[event],
            f"P1 {event}: token {token.id} not invalidated with {EVENT_REASONS[event]}: "
            f"{now_token!r}",
        )
    for link in earlier_links:
        _require_expired_or_used(world, link, f"P1 {event}: an earlier link")
    for booking_id, tokens in others_before.items():
        _require(
            world.tokens_of(booking_id) == tokens,
            f"P1 {event}: booking {booking_id}'s tokens changed",
        )


def check_p2(
    uow_factory: UowFactory,
    *,
    plan: WorldPlan,
    reason: InvalidationReason,
    wait: timedelta,
    single: bool,
) -> None:
    """P2: an invalidated token has `invalidated`, its reason, and `used_at` equal to the
    invalidation time, or to its earlier consumption time when it had been consumed.

    `single` invalidates one token by id (`invalidate_token`); otherwise the whole booking.
    """
    world = build_world(uow_factory, plan)
    subject = world.subject
    world.clock.advance(wait)
    before = {t.id: t for t in world.tokens_of(subject.id)}
    at = world.clock.now()
    if single:
        target = max(before)
        _require(world.guests.invalidate_token(target, reason), "P2: invalidate_token said no")
        changed = {target}
    else:
        world.guests.invalidate_tokens_by_booking_id(subject.id, reason)
        changed = set(before)
    for token in world.tokens_of(subject.id):
        if token.id not in changed:
            _require(token == before[token.id], f"P2: untouched token {token.id} changed")
            continue
        earlier = before[token.id].used_at
        expected_used_at = earlier if earlier is not None else at
        _require(
            token.invalidated
            and token.invalidation_reason == reason
            and token.used_at == expected_used_at,
            f"P2: token {token.id} after invalidation at {at}: {token!r} "
            f"(used_at before: {earlier})",
        )


class DeadKind:
    """How P3 kills tokens of the subject booking."""

    BATCH: Final = "batch"
    SINGLE: Final = "single"
    CONSUME: Final = "consume"
    EXPIRE: Final = "expire"
    ACTION: Final = "action"  # a link action (SPEC §8.1) with the target
    ALL: Final = (BATCH, SINGLE, CONSUME, EXPIRE, ACTION)


def check_p3(
    uow_factory: UowFactory,
    *,
    plan: WorldPlan,
    kill: str,
    reason: InvalidationReason,
    overshoot: timedelta,
) -> None:
    """P3: any token that is invalidated, used or expired is refused, by `verify_token` and
    by `consume_token`, with `TokenExpiredOrUsed` ("Token expired or used").

    `kill` first makes the subject booking's newest link dead (invalidate the booking or
    that token, consume it, or let the clock pass its expiry by `overshoot`), then every
    known link whose stored token is dead is checked.
    """
    world = build_world(uow_factory, plan)
    subject = world.subject
    target = [link for link in world.links if link.booking_id == subject.id][-1]
    token = world.lookup(target).token
    if kill == DeadKind.BATCH:
        world.guests.invalidate_tokens_by_booking_id(subject.id, reason)
    elif kill == DeadKind.SINGLE:
        world.guests.invalidate_token(token.id, reason)
    elif kill == DeadKind.CONSUME:
        if not _is_dead(token, world.clock.now()):
            world.guests.consume_token(target.raw)
    elif kill == DeadKind.ACTION:
        if _refused(world, target) is None:
            world.quality.report_with_link(target.raw, IncidentType.OTHER, "P3")
        else:  # already refused (dead, or its booking closed): kill it the plain way
            world.guests.invalidate_token(token.id, reason)
    else:
        world.clock.set(max(world.clock.now(), token.expires_at + overshoot))
    now = world.clock.now()
    _require(_is_dead(world.lookup(target).token, now), f"P3 {kill}: the target is not dead")
    for link in world.links:
        if _is_dead(world.lookup(link).token, now):
            _require_expired_or_used(world, link, f"P3 {kill}: a dead link")


def check_p4(uow_factory: UowFactory, *, plan: WorldPlan, wait: timedelta) -> None:
    """P4: any token that is not invalidated, used or expired (guest not blocked, booking
    open and not moved on) is accepted: `verify_token` returns that token, unchanged, and its
    guest; `consume_token` then accepts it once.

    A fresh link for the subject booking is always issued last, so at least one is live.
    """
    world = build_world(uow_factory, plan)
    world.clock.advance(wait)
    fresh = world.request_link(world.subject.guest_email, world.subject.id)
    now = world.clock.now()
    live = [link for link in world.links if not _is_dead(world.lookup(link).token, now)]
    _require(fresh in live, "P4: the fresh link is not live")
    for link in live:
        stored = world.lookup(link)
        verified = world.guests.verify_token(link.raw)
        _require(
            verified.token == stored.token
            and verified.guest.id == stored.guest.id
            and verified.guest.normalized_email == link.guest_email,
            f"P4: verify of a live link returned {verified!r}, storage holds {stored!r}",
        )
        _require(world.lookup(link).token == stored.token, "P4: verify changed the token")
    for link in live:
        consumed = world.guests.consume_token(link.raw)
        _require(
            consumed.token.id == world.lookup(link).token.id and consumed.token.used_at == now,
            f"P4: consume of a live link returned {consumed!r}",
        )


def check_p5(
    uow_factory: UowFactory,
    *,
    plan: WorldPlan,
    reason: InvalidationReason,
    revoke: tuple[int, ...] = (),
) -> None:
    """P5: batch invalidation of a booking invalidates all its tokens, returns how many it
    changed, and touches no other booking's token (nor any inbox link).

    `revoke` picks tokens of the booking to invalidate singly first: they are not counted.
    """
    world = build_world(uow_factory, plan)
    subject = world.subject
    _revoke(world, subject, revoke)
    everything = world.all_tokens()
    mine = world.tokens_of(subject.id)
    expected = sum(1 for t in mine if not t.invalidated)
    count = world.guests.invalidate_tokens_by_booking_id(subject.id, reason)
    _require(count == expected, f"P5: returned {count}, {expected} tokens were not invalidated")
    after = world.all_tokens()
    for token_hash, token in after.items():
        if token.booking_id == subject.id:
            _require(token.invalidated, f"P5: token {token.id} of the booking still valid")
        else:
            _require(token == everything[token_hash], f"P5: token {token.id} of another changed")
    _require(set(after) == set(everything), "P5: tokens appeared or vanished")


def check_p6(
    uow_factory: UowFactory,
    *,
    plan: WorldPlan,
    shifts: tuple[timedelta, ...],
    requester: str,
) -> None:
    """P6: after each reschedule of a booking, every earlier token of it is invalidated and
    exactly one new token exists: valid, bound to the new revision, with the standard TTL,
    and its mailed link verifies while every earlier link is refused."""
    world = build_world(uow_factory, plan)
    booking = world.subject
    who = {
        "mentor": Requester(user_id=booking.mentor_id),
        "student": Requester(email=f"  {booking.guest_email.upper()} "),
        "system": Requester.system(),
    }[requester]
    for shift in shifts:
        earlier = world.tokens_of(booking.id)
        earlier_links = [link for link in world.links if link.booking_id == booking.id]
        outcome = world.bookings.reschedule_session(booking.id, booking.start_time + shift, who)
        now = world.clock.now()
        _require(outcome.link_issued and outcome.link_sent, f"P6: outcome {outcome!r}")
        _require(outcome.booking.revision == booking.revision + 1, "P6: revision did not grow")
        booking = outcome.booking
        new_link = world.mailed_link(booking)
        tokens = world.tokens_of(booking.id)
        new = [t for t in tokens if t.id not in _ids(earlier)]
        _require(len(new) == 1, f"P6: {len(new)} new tokens after a reschedule")
        token = new[0]
        _require(
            not token.invalidated
            and token.used_at is None
            and token.booking_revision == booking.revision
            and token.created_at == now
            and token.expires_at - token.created_at == world.settings.token_ttl,
            f"P6: the new token is not a fresh standard one: {token!r}",
        )
        for old in tokens:
            if old.id != token.id:
                _require(old.invalidated, f"P6: earlier token {old.id} still valid")
        verified = world.guests.verify_token(new_link.raw)
        _require(verified.token.id == token.id, "P6: the mailed link is not the new token")
        for link in earlier_links:
            _require_expired_or_used(world, link, "P6: an earlier link")


def check_p7(uow_factory: UowFactory, *, ttl: timedelta, paths: tuple[str, ...]) -> None:
    """P7: a token from any creation path expires exactly TTL after its creation: accepted a
    microsecond before, refused at that instant.

    Paths: `inbox` (no booking), `inbox_booking`, `booking` (book_session's link),
    `reschedule` (the rescheduled booking's link).
    """
    world = build_world(
        uow_factory,
        WorldPlan(bookings=()),
        settings=Settings(token_ttl=ttl, max_links_per_hour=None),
    )
    email = "p7.guest@example.com"
    for number, path in enumerate(paths):
        if path == "inbox":
            link = world.request_link(email, None)
        elif path == "inbox_booking":
            booking = _book(world, email, number)
            link = world.request_link(email, booking.id)
        elif path == "booking":
            booking = _book(world, email, number)
            link = world.links[-1]
        else:
            booking = _book(world, email, number)
            apply_event(world, LifecycleEvent.RESCHEDULE, booking)
            link = world.links[-1]
        created = world.clock.now()
        token = world.lookup(link).token
        _require(
            token.created_at == created and token.expires_at == created + ttl,
            f"P7 {path}: created {token.created_at}, expires {token.expires_at}, ttl {ttl}",
        )
        world.clock.set(token.expires_at - timedelta(microseconds=1))
        _require(
            world.guests.verify_token(link.raw).token.id == token.id, f"P7 {path}: early refusal"
        )
        world.clock.set(token.expires_at)
        _require_expired_or_used(world, link, f"P7 {path}: at expires_at")


def _book(world: World, email: str, number: int) -> Booking:
    outcome = world.bookings.book_session(
        MENTOR_ID, email, world.clock.now() + timedelta(days=1), uid=f"p7-{number}"
    )
    world.booking_list.append(outcome.booking)
    world.mailed_link(outcome.booking)
    return outcome.booking


def check_p8(
    uow_factory: UowFactory,
    *,
    plan: WorldPlan,
    event: LifecycleEvent | None,
    reason: InvalidationReason,
    revoke: tuple[int, ...] = (),
) -> None:
    """P8: an invalidation that changed tokens wrote, per guest affected, one
    `INVALIDATE_TOKEN` entry: that guest's id, the booking id as resource id, success, the
    reason, that guest's count, and the invalidation time; none for unaffected guests.

    `event` None invalidates through `invalidate_tokens_by_booking_id(reason)`. `revoke`
    picks tokens to invalidate singly first (their guests may then be unaffected).
    """
    world = build_world(uow_factory, plan)
    subject = world.subject
    _revoke(world, subject, revoke)
    before = world.tokens_of(subject.id)
    expected: dict[int, int] = {}
    for token in before:
        if not token.invalidated:
            expected[token.guest_id] = expected.get(token.guest_id, 0) + 1
    audit_before = _ids_of(world.guests.audit_trail(booking_id=subject.id, limit=AUDIT_LIMIT))
    at = world.clock.now()
    if event is None:
        world.guests.invalidate_tokens_by_booking_id(subject.id, reason)
        wanted = reason
    else:
        apply_event(world, event, subject)
        wanted = EVENT_REASONS[event]
    new_entries = [
        e
        for e in world.guests.audit_trail(booking_id=subject.id, limit=AUDIT_LIMIT)
        if e.id not in audit_before and e.action == AuditAction.INVALIDATE_TOKEN
    ]
    by_guest: dict[int | None, list[AuditEntry]] = {}
    for entry in new_entries:
        by_guest.setdefault(entry.guest_id, []).append(entry)
    _require(
        set(by_guest) == set(expected),
        f"P8: entries for guests {sorted(by_guest, key=str)}, expected {sorted(expected)}",
    )
    for guest_id, count in expected.items():
        entries = by_guest[guest_id]
        _require(len(entries) == 1, f"P8: {len(entries)} entries for guest {guest_id}")
        entry = entries[0]
        _require(
            entry.resource_id == str(subject.id)
            and entry.success is True
            and entry.metadata.get("reason") == str(wanted)
            and entry.metadata.get("count") == count
            and entry.created_at == at,
            f"P8: entry {entry!r}, expected guest {guest_id}, count {count}, reason {wanted}",
        )


def _ids_of(entries: Iterable[AuditEntry]) -> set[int]:
    return {e.id for e in entries}


def check_p9(uow_factory: UowFactory, *, plan: WorldPlan, case: str, missing_id: int) -> None:
    """P9: invalidating a booking with no tokens, an unknown booking, or a booking a second
    time returns 0, raises nothing, and changes nothing (tokens and audit log alike)."""
    world = build_world(uow_factory, plan)
    if case == "no_tokens":
        with world.uow.transaction() as tx:
            empty = tx.bookings.add(
                Booking(
                    id=UNSAVED_ID,
                    uid="p9-empty",
                    mentor_id=MENTOR_ID,
                    guest_email="p9@example.com",
                    start_time=world.clock.now(),
                    end_time=world.clock.now() + timedelta(minutes=15),
                    status=world.subject.status,
                    revision=0,
                )
            )
            tx.commit()
        target = empty.id
    elif case == "unknown":
        known = {b.id for b in world.booking_list}
        target = missing_id
        while target in known:
            target += 1
        with world.uow.transaction(readonly=True) as tx:
            _require(tx.bookings.get(target) is None, "P9: the unknown booking exists")
    else:
        target = world.subject.id
        world.guests.invalidate_tokens_by_booking_id(target, InvalidationReason.MANUAL_REVOCATION)
    tokens = world.all_tokens()
    audit = world.audit()
    world.clock.advance(timedelta(seconds=1))
    for reason in (InvalidationReason.BOOKING_CANCELLED, InvalidationReason.INCIDENT_REPORTED):
        count = world.guests.invalidate_tokens_by_booking_id(target, reason)
        _require(count == 0, f"P9 {case}: returned {count}")
    _require(world.all_tokens() == tokens, f"P9 {case}: tokens changed")
    _require(world.audit() == audit, f"P9 {case}: the audit log changed")


# -------------------------------------------------------------------------- the registry


@attrs.frozen
class Property:
    """One SPEC §6 property: its check and the strategy of the check's keyword arguments."""

    number: str
    check: Callable[..., None]
    arguments: st.SearchStrategy[dict[str, Any]]


_REVOKE: Final = st.lists(st.integers(0, 20), max_size=3).map(tuple)
_SHIFTS: Final = st.timedeltas(min_value=timedelta(minutes=-600), max_value=timedelta(days=30))

PROPERTIES: Final[Mapping[str, Property]] = {
    "P1": Property(
        "P1",
        check_p1,
        st.fixed_dictionaries(
            {
                "plan": world_plans(),
                "event": lifecycle_events(),
                "shift": _SHIFTS,
                "rating": ratings(),
                "incident_type": incident_types(),
                "via_link": st.booleans(),
            }
        ),
    ),
    "P2": Property(
        "P2",
        check_p2,
        st.fixed_dictionaries(
            {
                "plan": world_plans(),
                "reason": invalidation_reasons(),
                "wait": st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=1)),
                "single": st.booleans(),
            }
        ),
    ),
    "P3": Property(
        "P3",
        check_p3,
        st.fixed_dictionaries(
            {
                "plan": world_plans(),
                "kill": st.sampled_from(DeadKind.ALL),
                "reason": invalidation_reasons(),
                "overshoot": st.one_of(
                    st.just(timedelta(0)),
                    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)),
                ),
            }
        ),
    ),
    "P4": Property(
        "P4",
        check_p4,
        st.fixed_dictionaries(
            {
                "plan": world_plans(),
                "wait": st.timedeltas(min_value=timedelta(0), max_value=timedelta(minutes=20)),
            }
        ),
    ),
    "P5": Property(
        "P5",
        check_p5,
        st.fixed_dictionaries(
            {
                "plan": world_plans(min_bookings=2),
                "reason": invalidation_reasons(),
                "revoke": _REVOKE,
            }
        ),
    ),
    "P6": Property(
        "P6",
        check_p6,
        st.fixed_dictionaries(
            {
                "plan": world_plans(),
                "shifts": st.lists(_SHIFTS, min_size=1, max_size=3).map(tuple),
                "requester": st.sampled_from(["mentor", "student", "system"]),
            }
        ),
    ),
    "P7": Property(
        "P7",
        check_p7,
        st.fixed_dictionaries(
            {
                "ttl": st.one_of(
                    st.just(timedelta(minutes=15)),
                    st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(hours=24)),
                ),
                "paths": st.lists(
                    st.sampled_from(["inbox", "inbox_booking", "booking", "reschedule"]),
                    min_size=1,
                    max_size=4,
                ).map(tuple),
            }
        ),
    ),
    "P8": Property(
        "P8",
        check_p8,
        st.fixed_dictionaries(
            {
                "plan": world_plans(),
                "event": st.one_of(st.none(), lifecycle_events()),
                "reason": invalidation_reasons(),
                "revoke": _REVOKE,
            }
        ),
    ),
    "P9": Property(
        "P9",
        check_p9,
        st.fixed_dictionaries(
            {
                "plan": world_plans(),
                "case": st.sampled_from(["no_tokens", "unknown", "twice"]),
                "missing_id": st.integers(1, 2**40),
            }
        ),
    ),
}
"""Every property by number; `PROPERTIES["P1"].check(factory, **drawn)`."""
