"""Every error has a stable code and a one-line message that never carries a token.

A scripted lifecycle provokes every error class the services raise, feeding raw tokens and
token hashes into every input that could echo them back; none may appear in what is raised.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

import pytest

import magiclink
from magiclink import (
    AccessDenied,
    BookingClosed,
    BookingNotFound,
    DuplicateRating,
    InvalidInput,
    InvalidToken,
    MagicLinkError,
    RateLimited,
    Requester,
    StorageError,
    TokenExpiredOrUsed,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.testing import hash_token
from magiclink.testing.faults import FaultyUnitOfWork, InjectedFault

from .world import MENTOR, World, build, secrets_in

CODES: Final = frozenset(
    {
        "UNAUTHORIZED",
        "FORBIDDEN",
        "TOO_MANY_REQUESTS",
        "NOT_FOUND",
        "CONFLICT",
        "BAD_REQUEST",
        "INTERNAL",
    }
)
MAX_MESSAGE: Final = 120


def error_classes() -> list[type[MagicLinkError]]:
    """MagicLinkError and every subclass defined in magiclink's error module (the module that
    defines `MagicLinkError`), found through the class itself, sorted by name."""
    found: list[type[MagicLinkError]] = []
    pending: list[type[MagicLinkError]] = [MagicLinkError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == MagicLinkError.__module__ and cls not in found:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__name__)


def is_one_line(message: str) -> bool:
    return (
        bool(message) and message == message.strip() and "\n" not in message and "\r" not in message
    )


# --------------------------------------------------------------------- the classes themselves


def test_the_error_tree_is_the_documented_one() -> None:
    assert {cls.__name__ for cls in error_classes()} == {
        "MagicLinkError",
        "InvalidToken",
        "TokenExpiredOrUsed",
        "AccessDenied",
        "RateLimited",
        "BookingNotFound",
        "BookingClosed",
        "DuplicateRating",
        "InvalidInput",
        "StorageError",
    }


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_has_a_code_and_a_one_line_message(cls: type[MagicLinkError]) -> None:
    error = cls()
    assert cls.code in CODES
    assert error.code == cls.code
    assert is_one_line(error.message)
    assert len(error.message) <= MAX_MESSAGE
    assert error.message[0].isupper()
    assert str(error) == error.message
    assert cls.__doc__ and cls.__doc__.strip()  # says when it is raised
    assert cls.__name__ in magiclink.__all__  # a host can catch it by name


def test_the_spec_fixes_three_messages_and_codes() -> None:
    assert (InvalidToken.code, str(InvalidToken())) == ("UNAUTHORIZED", "Invalid token")
    assert (TokenExpiredOrUsed.code, str(TokenExpiredOrUsed())) == (
        "UNAUTHORIZED",
        "Token expired or used",
    )
    assert (AccessDenied.code, str(AccessDenied())) == ("FORBIDDEN", "Access denied")


def test_codes_map_to_what_a_web_host_answers() -> None:
    """One code per kind of answer: a host maps `.code` to its HTTP status without a table."""
    assert RateLimited.code == "TOO_MANY_REQUESTS"
    assert BookingNotFound.code == "NOT_FOUND"
    assert BookingClosed.code == DuplicateRating.code == "CONFLICT"
    assert InvalidInput.code == "BAD_REQUEST"
    assert StorageError.code == "INTERNAL"
    assert StorageError().transient is False
    assert StorageError("lost", transient=True).transient is True


def test_a_custom_message_replaces_the_default() -> None:
    error = InvalidInput("rating must be an integer from 1 to 5")
    assert str(error) == error.message == "rating must be an integer from 1 to 5"
    assert error.args == ("rating must be an integer from 1 to 5",)


# ------------------------------------------------------------------ a scripted lifecycle


class Collector:
    """Runs calls that must fail and keeps what they raised."""

    def __init__(self) -> None:
        self.raised: list[MagicLinkError] = []
        self.inbox_raws: list[str] = []

    def expect(
        self, kind: type[MagicLinkError], call: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        with pytest.raises(kind) as caught:
            call(*args, **kwargs)
        self.raised.append(caught.value)


def provoke_everything(world: World, faulty: FaultyUnitOfWork) -> Collector:
    """Every error class, with raw tokens and hashes offered as input wherever possible."""
    out = Collector()
    guests, bookings = world.guests, world.bookings
    booking_id = world.book_id("ada@example.com")
    raw = world.last_raw()
    digest = hash_token(raw)
    stranger = Requester(user_id=99, email="eve@example.com")

    # InvalidInput: each input that could echo a token back gets one
    out.expect(InvalidInput, guests.request_inbox_link, raw)
    out.expect(InvalidInput, guests.request_inbox_link, f"{raw} @example.com")
    out.expect(InvalidInput, guests.invalidate_tokens_by_booking_id, booking_id, raw)
    out.expect(InvalidInput, guests.invalidate_token, raw, "manual_revocation")
    out.expect(InvalidInput, guests.log_access, None, "web", "VIEW", metadata={raw: object()})
    out.expect(InvalidInput, guests.log_access, None, raw * 5, "VIEW")
    out.expect(InvalidInput, bookings.cancel_session, booking_id, raw * 40, "mentor", MENTOR)
    out.expect(InvalidInput, bookings.cancel_session, booking_id, "", digest, MENTOR)
    out.expect(InvalidInput, bookings.reschedule_session, booking_id, datetime(2030, 2, 1), MENTOR)
    out.expect(
        InvalidInput, bookings.book_session, 7, "bob@example.com", world.clock.now(), uid=raw * 5
    )
    out.expect(InvalidInput, world.ratings.create_rating, booking_id, raw, 6)
    out.expect(InvalidInput, world.ratings.create_rating, booking_id, "p", 5, feedback=raw * 40)
    out.expect(InvalidInput, world.quality.create_incident, "p", "uid", digest, "")
    out.expect(InvalidInput, guests.audit_trail, booking_id=booking_id, limit=0)

    # InvalidToken: malformed (a token upper-cased, with spaces) and unknown (a hash of one)
    out.expect(InvalidToken, guests.verify_token, raw.upper())
    out.expect(InvalidToken, guests.consume_token, f" {raw} ")
    out.expect(InvalidToken, guests.verify_token, digest)
    out.expect(InvalidToken, guests.consume_token, hash_token(digest))

    # RateLimited, AccessDenied, BookingNotFound
    out.inbox_raws.append(guests.request_inbox_link("bob@example.com").raw)
    out.expect(RateLimited, guests.request_inbox_link, "bob@example.com")
    out.expect(AccessDenied, guests.request_inbox_link, "bob@example.com", booking_id)
    out.expect(AccessDenied, bookings.cancel_session, booking_id, raw, "mentor", stranger)
    out.expect(BookingNotFound, bookings.cancel_session, 10_000, raw, "mentor", MENTOR)
    out.expect(BookingNotFound, world.ratings.create_rating, 10_000, "p", 5)

    # TokenExpiredOrUsed: consumed, expired, invalidated by a lifecycle event
    guests.consume_token(raw)
    out.expect(TokenExpiredOrUsed, guests.consume_token, raw)
    out.expect(TokenExpiredOrUsed, guests.verify_token, raw)
    expiring = guests.request_inbox_link("cy@example.com").raw
    out.inbox_raws.append(expiring)
    world.clock.advance(timedelta(minutes=16))
    out.expect(TokenExpiredOrUsed, guests.verify_token, expiring)

    # DuplicateRating, BookingClosed
    world.ratings.create_rating(booking_id, "p", 5)
    out.expect(DuplicateRating, world.ratings.create_rating, booking_id, "p", 4)
    cancelled = world.book_id("dee@example.com")
    dee = world.last_raw()
    bookings.cancel_session(cancelled, "", "mentor", MENTOR)
    out.expect(TokenExpiredOrUsed, guests.consume_token, dee)
    out.expect(BookingClosed, bookings.cancel_session, cancelled, raw, "mentor", MENTOR)
    out.expect(BookingClosed, world.ratings.create_rating, cancelled, "p", 5)
    out.expect(BookingClosed, guests.request_inbox_link, "dee@example.com", cancelled)

    # AccessDenied for a blocked guest's own link
    blocked = world.book_id("eve@example.com")
    eve = world.last_raw()
    guests.block_guest("eve@example.com")
    out.expect(AccessDenied, guests.verify_token, eve)
    out.expect(AccessDenied, guests.request_inbox_link, "eve@example.com", blocked)

    # StorageError: a storage failure whose driver text quotes the token and its hash
    world.book_id("fay@example.com")
    fay = world.last_raw()
    faulty.arm(
        1,
        match="tokens.lookup",
        times=2,
        error_factory=lambda name: InjectedFault(f"{name} failed for {fay} ({hash_token(fay)})"),
    )
    out.expect(StorageError, guests.verify_token, fay)
    out.expect(StorageError, guests.consume_token, fay)
    faulty.arm(1, match="tokens.invalidate", times=2, transient=True)
    out.expect(StorageError, guests.invalidate_token, 1, "manual_revocation")
    faulty.disarm()
    return out


@pytest.fixture
def provoked() -> tuple[World, Collector]:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    world = build(uow=faulty)
    return world, provoke_everything(world, faulty)


def test_the_script_provokes_every_error_class(provoked: tuple[World, Collector]) -> None:
    _, collected = provoked
    raised = {type(error) for error in collected.raised}
    assert raised == set(error_classes()) - {MagicLinkError}


def test_no_raised_error_carries_a_raw_token_or_a_hash(provoked: tuple[World, Collector]) -> None:
    world, collected = provoked
    secrets = list(secrets_in(world.raw_tokens() + collected.inbox_raws))
    assert len(secrets) == 2 * (len(world.sent) + 2)
    for error in collected.raised:
        shown = f"{error} {error!r} {error.args!r} {error.message}"
        for secret in secrets:
            assert secret not in shown, f"{type(error).__name__}: {error}"


def test_every_raised_error_is_one_line_with_its_class_code(
    provoked: tuple[World, Collector],
) -> None:
    _, collected = provoked
    for error in collected.raised:
        assert error.code == type(error).code
        assert is_one_line(error.message), repr(error.message)
        assert len(error.message) <= MAX_MESSAGE
        assert str(error) == error.message


def test_storage_error_names_the_failure_not_the_driver_text(
    provoked: tuple[World, Collector],
) -> None:
    _, collected = provoked
    storage = [e for e in collected.raised if isinstance(e, StorageError)]
    wrapped = [e for e in storage if isinstance(e.__cause__, InjectedFault)]
    assert wrapped, "the foreign exception is chained for debugging"
    for error in wrapped:
        assert str(error) == "Storage failed: InjectedFault"
