"""A hypothesis state machine: random lifecycles against a reference model of live links.

Rules book sessions, request inbox links (with and without a booking), verify and consume
links, cancel (mentor or student), mark no-shows, complete, reschedule, rate, report
incidents, block and unblock guests, try forbidden changes, make the next batch
invalidation hit a storage fault (transient: retried; permanent: the booking operation
still succeeds and only fail-closed verification protects the old links, §5.4), and move the
clock (sometimes past the TTL, sometimes past the request interval), and present booking links
to the four link actions of §8.1 (a refusal, §8.2, changes nothing and leaves the link usable). Every service call's outcome is predicted
by the model. After every step, every link ever issued is verified: exactly the links the
model says are live are accepted; a known link is never `InvalidToken`; a blocked guest's
links are `AccessDenied`; every other dead link is `TokenExpiredOrUsed`. The stored
`invalidated` and `used_at` of every token agree with the model too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from magiclink import (
    AccessDenied,
    BookingClosed,
    BookingStatus,
    DuplicateRating,
    IncidentType,
    MagicLinkError,
    RateLimited,
    Requester,
    Settings,
    TokenExpiredOrUsed,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork
from magiclink.testing.properties import raw_from_url
from tests.unit.harness import INTERVAL, TTL, Harness, hash_of

EMAILS = ["ann@example.com", "bob@example.com", "cy@example.com"]
CAP = Settings().max_links_per_hour  # the harness runs on the default settings
MENTORS = [1, 2]
EVENTS = [
    "mentor_cancel",
    "student_cancel",
    "no_show",
    "complete",
    "reschedule_by_student",
    "reschedule_by_system",
    "rate",
    "incident",
]
ATTEMPTS = [
    "stranger_cancel",
    "stranger_no_show",
    "stranger_reschedule",
    "unknown_booking_link",
    "unknown_incident",
]
LINK_ACTIONS = ["cancel", "reschedule", "rate", "report"]
STEPS = [
    timedelta(seconds=1),
    timedelta(seconds=10),
    timedelta(seconds=59),
    INTERVAL,
    INTERVAL + timedelta(seconds=1),
    TTL - timedelta(microseconds=1),
    TTL,
    timedelta(minutes=16),
    timedelta(hours=1),
]


@attrs.define
class ModelBooking:
    id: int
    uid: str
    mentor_id: int
    email: str
    status: BookingStatus = BookingStatus.SCHEDULED
    revision: int = 0
    rated: bool = False
    generation: int = 0  # §8.4: advanced by every event of the booking

    @property
    def closed(self) -> bool:
        return self.status in (BookingStatus.CANCELLED, BookingStatus.NO_SHOW)


@attrs.define
class ModelGuest:
    blocked: bool = False
    last_request_at: datetime | None = None
    # When each guest-initiated link was issued (the hourly cap, §9.4).
    inbox_issued: list[datetime] = attrs.Factory(list)


@attrs.define
class ModelLink:
    raw: str = attrs.field(repr=False)
    email: str
    booking_id: int | None
    revision: int | None
    expires_at: datetime
    generation: int = 0
    used: bool = False
    invalidated: bool = False


class LifecycleMachine(RuleBasedStateMachine):
    """The services on a fresh in-memory storage, and the model they must agree with."""

    bookings = Bundle("bookings")

    def __init__(self) -> None:
        super().__init__()
        self.faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
        self.h = Harness.build(self.faulty)
        self.fault: str | None = None  # the armed invalidation fault, if any
        self.model: dict[int, ModelBooking] = {}
        self.guests: dict[str, ModelGuest] = {}
        self.links: list[ModelLink] = []

    # ---------------------------------------------------------------- model helpers

    @property
    def now(self) -> datetime:
        return self.h.clock.now()

    def blocked(self, email: str) -> bool:
        guest = self.guests.get(email)
        return guest is not None and guest.blocked

    def expected_error(self, link: ModelLink) -> type[MagicLinkError] | None:
        if self.blocked(link.email):
            return AccessDenied
        if link.invalidated or link.used or link.expires_at <= self.now:
            return TokenExpiredOrUsed
        if link.booking_id is not None:
            booking = self.model[link.booking_id]
            if booking.closed or booking.revision != link.revision:
                return TokenExpiredOrUsed
            if booking.generation != link.generation:  # §8.4, even if invalidation failed
                return TokenExpiredOrUsed
        return None

    def kill_links(self, booking_id: int) -> None:
        """An event of the booking committed: its link generation moves on (§8.4); then the
        batch invalidation ran: every link of the booking dies, unless it failed."""
        self.model[booking_id].generation += 1
        fault, self.fault = self.fault, None
        if fault == "permanent":
            return  # the booking change stands (R9); only fail-closed checks protect it
        for link in self.links:
            if link.booking_id == booking_id:
                link.invalidated = True

    def mailed(self, booking: ModelBooking, sent_before: int) -> None:
        """Record the link just mailed for `booking` (exactly one new mail)."""
        assert len(self.h.sent) == sent_before + 1
        message = self.h.sent[-1]
        assert (message.to, message.booking_id) == (booking.email, booking.id)
        self.links.append(
            ModelLink(
                raw=raw_from_url(message.url),
                email=booking.email,
                booking_id=booking.id,
                revision=booking.revision,
                expires_at=self.now + TTL,
                generation=booking.generation,
            )
        )

    def expect(self, error: type[MagicLinkError] | None, call: Any) -> Any:
        """Run `call`; it must raise exactly `error`, or succeed when `error` is None."""
        if error is None:
            return call()
        with pytest.raises(error) as caught:
            call()
        assert type(caught.value) is error
        return None

    # ------------------------------------------------------------------------ rules

    @rule(target=bookings, email=st.sampled_from(EMAILS), mentor=st.sampled_from(MENTORS))
    def book(self, email: str, mentor: int) -> int:
        sent = len(self.h.sent)
        outcome = self.h.bookings.book_session(mentor, email, self.now + timedelta(days=1))
        booking = ModelBooking(outcome.booking.id, outcome.booking.uid, mentor, email)
        self.model[booking.id] = booking
        if self.blocked(email):
            assert outcome.link_sent is False and len(self.h.sent) == sent
        else:
            self.guests.setdefault(email, ModelGuest())
            assert outcome.link_sent is True
            self.mailed(booking, sent)
        return booking.id

    def _request(self, email: str, booking_id: int | None) -> None:
        guest = self.guests.get(email)
        booking = None if booking_id is None else self.model.get(booking_id)
        error: type[MagicLinkError] | None = None
        if guest is not None and guest.blocked:
            error = AccessDenied
        elif booking_id is not None and booking is None:
            error = AccessDenied  # §9.5: as for another guest's booking
        elif booking is not None and booking.email != email:
            error = AccessDenied
        elif booking is not None and booking.closed:
            error = BookingClosed
        elif (
            guest is not None
            and guest.last_request_at is not None
            and self.now - guest.last_request_at < INTERVAL
        ):
            error = RateLimited
        elif (
            guest is not None
            and CAP is not None
            and (sum(t > self.now - timedelta(hours=1) for t in guest.inbox_issued) >= CAP)
        ):
            error = RateLimited  # §9.4: the hourly cap
        issued = self.expect(error, lambda: self.h.guests.request_inbox_link(email, booking_id))
        if issued is None:
            return
        model_guest = self.guests.setdefault(email, ModelGuest())
        model_guest.last_request_at = self.now
        model_guest.inbox_issued.append(self.now)
        assert issued.expires_at == self.now + TTL
        self.links.append(
            ModelLink(
                raw=issued.raw,
                email=email,
                booking_id=booking_id,
                revision=None if booking is None else booking.revision,
                expires_at=issued.expires_at,
                generation=0 if booking is None else booking.generation,
            )
        )

    @rule(email=st.sampled_from(EMAILS))
    def request_inbox_link(self, email: str) -> None:
        self._request(email, None)

    @rule(booking_id=bookings, own=st.booleans(), email=st.sampled_from(EMAILS))
    def request_booking_link(self, booking_id: int, own: bool, email: str) -> None:
        self._request(self.model[booking_id].email if own else email, booking_id)

    @precondition(lambda self: bool(self.links))
    @rule(index=st.integers(0, 10**6))
    def consume(self, index: int) -> None:
        link = self.links[index % len(self.links)]
        error = self.expected_error(link)
        result = self.expect(error, lambda: self.h.guests.consume_token(link.raw))
        if result is not None:
            assert result.token.used_at == self.now
            link.used = True

    @rule(booking_id=bookings, event=st.sampled_from(EVENTS), days=st.integers(-2, 5))
    def lifecycle_event(self, booking_id: int, event: str, days: int) -> None:
        """One lifecycle event, by its rightful actor (one rule, so links live long enough)."""
        booking = self.model[booking_id]
        if event in ("mentor_cancel", "student_cancel"):
            self.cancel(booking, event.removesuffix("_cancel"))
        elif event == "no_show":
            self.no_show(booking)
        elif event == "complete":
            self.complete(booking)
        elif event in ("reschedule_by_student", "reschedule_by_system"):
            self.reschedule(booking, days, by_student=event == "reschedule_by_student")
        elif event == "rate":
            self.rate(booking, score=days % 5 + 1)
        else:
            kind = list(IncidentType)[days % len(IncidentType)]
            incident = self.h.quality.create_incident("mentor", booking.uid, kind, "")
            assert incident.booking_id == booking.id
            self.kill_links(booking.id)

    def cancel(self, booking: ModelBooking, by: str) -> None:
        who = (
            Requester(user_id=booking.mentor_id)
            if by == "mentor"
            else Requester(email=booking.email)
        )
        error = BookingClosed if booking.closed else None
        self.expect(error, lambda: self.h.bookings.cancel_session(booking.id, "", by, who))
        if error is None:
            booking.status = BookingStatus.CANCELLED
            self.kill_links(booking.id)

    def no_show(self, booking: ModelBooking) -> None:
        error = BookingClosed if booking.closed else None
        who = Requester(user_id=booking.mentor_id)
        self.expect(error, lambda: self.h.bookings.mark_session_as_no_show(booking.id, who))
        if error is None:
            booking.status = BookingStatus.NO_SHOW
            self.kill_links(booking.id)

    def complete(self, booking: ModelBooking) -> None:
        error = BookingClosed if booking.closed else None
        self.expect(error, lambda: self.h.bookings.mark_session_complete(booking.id))
        if error is None:
            booking.status = BookingStatus.COMPLETED

    def reschedule(self, booking: ModelBooking, days: int, *, by_student: bool) -> None:
        who = Requester(email=booking.email.upper()) if by_student else Requester.system()
        error = BookingClosed if booking.closed else None
        sent = len(self.h.sent)
        start = self.now + timedelta(days=days)
        outcome = self.expect(
            error, lambda: self.h.bookings.reschedule_session(booking.id, start, who)
        )
        if outcome is None:
            return
        booking.revision += 1
        assert outcome.booking.revision == booking.revision
        self.kill_links(booking.id)
        if self.blocked(booking.email):
            assert (outcome.link_issued, outcome.link_sent) == (False, False)
            assert len(self.h.sent) == sent
        else:
            assert (outcome.link_issued, outcome.link_sent) == (True, True)
            self.mailed(booking, sent)

    def rate(self, booking: ModelBooking, score: int) -> None:
        error: type[MagicLinkError] | None = None
        if booking.closed:
            error = BookingClosed
        elif booking.rated:
            error = DuplicateRating
        self.expect(error, lambda: self.h.ratings.create_rating(booking.id, "p", score))
        if error is None:
            booking.rated = True
            self.kill_links(booking.id)

    @precondition(lambda self: self.fault is None and any(k.booking_id for k in self.links))
    @rule(index=st.integers(0, 10**6), action=st.sampled_from(LINK_ACTIONS), days=st.integers(1, 5))
    def link_action(self, index: int, action: str, days: int) -> None:
        """§8.1/§8.2: a booking link acts; a refused link or action changes nothing and a
        refused action leaves the link usable."""
        bound = [link for link in self.links if link.booking_id is not None]
        link = bound[index % len(bound)]
        assert link.booking_id is not None
        booking = self.model[link.booking_id]
        error = self.expected_error(link)
        if error is None and action == "rate" and booking.rated:
            error = DuplicateRating
        sent = len(self.h.sent)
        start = self.now + timedelta(days=days)
        calls: dict[str, Callable[[], object]] = {
            "cancel": lambda: self.h.bookings.cancel_with_link(link.raw, "x"),
            "reschedule": lambda: self.h.bookings.reschedule_with_link(link.raw, start),
            "rate": lambda: self.h.ratings.rate_with_link(link.raw, days),
            "report": lambda: self.h.quality.report_with_link(link.raw, "late", "x"),
        }
        if error is not None:
            self.expect(error, calls[action])
            assert len(self.h.sent) == sent
            return
        calls[action]()
        link.used = True
        booking.generation += 1  # §8.4: the action's transaction advanced it
        for other in self.links:  # every link of the booking dies, the used one too
            if other.booking_id == booking.id:
                other.invalidated = True
        if action == "cancel":
            booking.status = BookingStatus.CANCELLED
        elif action == "rate":
            booking.rated = True
        elif action == "reschedule":
            booking.revision += 1
            self.mailed(booking, sent)

    @rule(booking_id=bookings, attempt=st.sampled_from(ATTEMPTS), email=st.sampled_from(EMAILS))
    def refused_or_ignored_attempt(self, booking_id: int, attempt: str, email: str) -> None:
        """A stranger's change (AccessDenied), a link for an unknown booking, an incident
        about an unknown uid: none of them may change any link."""
        who = Requester(user_id=99, email="mallory@example.com")
        if attempt == "stranger_cancel":
            self.expect(
                AccessDenied,
                lambda: self.h.bookings.cancel_session(booking_id, "", "mentor", who),
            )
        elif attempt == "stranger_no_show":
            self.expect(
                AccessDenied, lambda: self.h.bookings.mark_session_as_no_show(booking_id, who)
            )
        elif attempt == "stranger_reschedule":
            self.expect(
                AccessDenied,
                lambda: self.h.bookings.reschedule_session(booking_id, self.now, who),
            )
        elif attempt == "unknown_booking_link":
            self._request(email, 10**9)
        else:
            incident = self.h.quality.create_incident("mentor", "unknown-uid", "other", "")
            assert incident.booking_id is None

    @rule(email=st.sampled_from(EMAILS), blocked=st.booleans())
    def block_or_unblock(self, email: str, blocked: bool) -> None:
        if blocked:
            self.h.guests.block_guest(email)
            self.guests.setdefault(email, ModelGuest()).blocked = True
            for link in self.links:  # §9.3: the block kills the guest's live links
                if link.email == email and not link.used and link.expires_at > self.now:
                    link.invalidated = True
            return
        result = self.h.guests.unblock_guest(email)
        assert (result is None) == (email not in self.guests)
        if email in self.guests:
            self.guests[email].blocked = False

    @rule(transient=st.booleans())
    def break_next_invalidation(self, transient: bool) -> None:
        """The next batch invalidation hits a storage fault: a transient one is retried and
        succeeds (R9.4); a permanent one fails it, and the operation still succeeds (R9)."""
        self.faulty.arm(1, transient=transient, match="tokens.invalidate_by_booking")
        self.fault = "transient" if transient else "permanent"

    @rule(delta=st.sampled_from(STEPS))
    def advance_clock(self, delta: timedelta) -> None:
        self.h.clock.advance(delta)

    # -------------------------------------------------------------------- invariant

    @invariant()
    def exactly_the_live_links_verify(self) -> None:
        for link in self.links:
            error = self.expected_error(link)
            with self.h.uow.transaction(readonly=True) as tx:
                stored = tx.tokens.lookup(hash_of(link.raw))
            assert stored is not None
            assert stored.token.invalidated == link.invalidated
            assert (stored.token.used_at is not None) == (link.used or link.invalidated)
            try:
                verified = self.h.guests.verify_token(link.raw)
            except MagicLinkError as refused:
                assert type(refused) is error, (link, refused, error)
                if error is TokenExpiredOrUsed:
                    assert str(refused) == "Token expired or used"
            else:
                assert error is None, (link, "accepted", error)
                assert verified.token == stored.token
                assert verified.guest.normalized_email == link.email
                assert verified.token.booking_id == link.booking_id


LifecycleMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None
)
TestStatefulLifecycle = LifecycleMachine.TestCase
