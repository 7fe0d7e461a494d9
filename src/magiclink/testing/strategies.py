"""Hypothesis strategies for the magiclink domain, for our tests and a host's.

Every strategy here draws values a caller could really pass to a service: well-formed and
malformed raw tokens, e-mail addresses (valid, spelled differently, invalid), aware and naive
datetimes, enumerations, ratings, durations, and the plans that `magiclink.testing.properties`
turns into a populated storage. Extend this module (not a test file) when a feature needs a
new kind of value.
"""

from __future__ import annotations

import enum
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import attrs
from hypothesis import strategies as st

from magiclink.domain._enums import IncidentType, InvalidationReason

__all__ = [
    "EPOCH",
    "HEX",
    "BookingPlan",
    "LifecycleEvent",
    "TokenStep",
    "WorldPlan",
    "aware_datetimes",
    "booking_plans",
    "durations",
    "email_variants",
    "emails",
    "incident_types",
    "invalid_durations",
    "invalid_emails",
    "invalid_ratings",
    "invalidation_reasons",
    "lifecycle_events",
    "malformed_raw_tokens",
    "naive_datetimes",
    "non_string_values",
    "ratings",
    "raw_tokens",
    "reasonable_starts",
    "world_plans",
]

HEX: Final = "0123456789abcdef"
EPOCH: Final = datetime(2030, 1, 1, tzinfo=UTC)
"""A fixed, timezone-aware instant from which drawn times are offsets."""

_LOCAL_CHARS: Final = string.ascii_letters + string.digits + "_%+-"
_LABEL_CHARS: Final = string.ascii_lowercase + string.digits
_WHITESPACE: Final = " \t\n\r\x0b\x0c"

# ----------------------------------------------------------------------------- raw tokens


def raw_tokens() -> st.SearchStrategy[str]:
    """Well-formed raw tokens: exactly 64 lowercase hexadecimal characters."""
    return st.text(alphabet=HEX, min_size=64, max_size=64)


@st.composite
def _upper_cased_tokens(draw: st.DrawFn) -> str:
    """A 64-character hex token with at least one upper-case letter."""
    token = list(draw(raw_tokens()))
    position = draw(st.integers(0, 63))
    token[position] = draw(st.sampled_from("ABCDEF"))
    return "".join(token)


@st.composite
def _tokens_with_one_bad_character(draw: st.DrawFn, bad: st.SearchStrategy[str]) -> str:
    """A 64-character token in which one character is replaced by a drawn bad one."""
    token = list(draw(raw_tokens()))
    position = draw(st.integers(0, 63))
    token[position] = draw(bad)
    return "".join(token)


_NON_HEX_ASCII: Final = st.sampled_from(
    [c for c in string.printable if c not in HEX and c not in "ABCDEF"]
)
# Look like digits or letters to a careless `isdigit()`/`\d`/`isalnum()` check.
_UNICODE_LOOKALIKES: Final = st.sampled_from(
    ["\uff10", "\u0660", "\u06f1", "\u0966", "\u00e9", "\u0430", "\u2460", "\U0001d7ce", "ß"]
)


def malformed_raw_tokens(*, include_huge: bool = True) -> st.SearchStrategy[str]:
    """Strings that are not raw tokens, each kind a verifier might get wrong.

    Empty, short and long hex strings, a non-hex ASCII character, upper case, Unicode
    look-alike digits, a NUL byte, surrounding whitespace, and (when `include_huge`) a
    1 MB string.
    """
    kinds: list[st.SearchStrategy[str]] = [
        st.just(""),
        st.text(alphabet=HEX, min_size=1, max_size=63),
        st.text(alphabet=HEX, min_size=65, max_size=200),
        _tokens_with_one_bad_character(_NON_HEX_ASCII),
        _upper_cased_tokens(),
        _tokens_with_one_bad_character(_UNICODE_LOOKALIKES),
        _tokens_with_one_bad_character(st.just("\x00")),
        raw_tokens().map(lambda t: t + "\x00"),
        raw_tokens().flatmap(
            lambda t: st.sampled_from([f" {t}", f"{t}\n", f"\t{t} ", t[:63] + " "])
        ),
        st.text(min_size=0, max_size=80).filter(lambda s: not _looks_well_formed(s)),
    ]
    if include_huge:
        kinds.append(st.sampled_from(["a" * 1_000_000, "0" * (1 << 20), "é" * 1_000_000]))
    return st.one_of(kinds)


def non_string_values() -> st.SearchStrategy[Any]:
    """Values of the wrong type where a string is expected (None, bytes, numbers, lists)."""
    return st.one_of(
        st.none(),
        st.binary(min_size=0, max_size=70),
        st.integers(),
        st.floats(allow_nan=False),
        st.booleans(),
        st.lists(st.text(alphabet=HEX, max_size=4), max_size=3),
        raw_tokens().map(lambda t: t.encode("ascii")),
    )


def _looks_well_formed(value: str) -> bool:
    return len(value) == 64 and all(c in HEX for c in value)


# --------------------------------------------------------------------------------- e-mails


@st.composite
def emails(draw: st.DrawFn) -> str:
    """Valid e-mail addresses, already normalized (lower-case ASCII, no surrounding space)."""
    # Dot-separated atoms (§9.2: email-validator refuses leading, trailing and doubled dots).
    atoms = draw(
        st.lists(st.text(alphabet=_LOCAL_CHARS, min_size=1, max_size=8), min_size=1, max_size=3)
    )
    local = ".".join(atoms).lower()
    labels = draw(
        st.lists(st.text(alphabet=_LABEL_CHARS, min_size=1, max_size=12), min_size=1, max_size=3)
    )
    tld = draw(
        st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=6).filter(
            lambda t: t not in {"arpa", "local", "onion"}  # special-use names (§9.2)
        )
    )
    return f"{local}@{'.'.join([*labels, tld])}"


@st.composite
def email_variants(draw: st.DrawFn, email: str) -> str:
    """`email` spelled as a user might type it: random letter case and surrounding space.

    Every variant normalizes back to `email` (only letters whose case round-trips change).
    """
    chars = [c.upper() if c.upper().lower() == c and draw(st.booleans()) else c for c in email]
    before = draw(st.text(alphabet=_WHITESPACE, max_size=3))
    after = draw(st.text(alphabet=_WHITESPACE, max_size=3))
    return f"{before}{''.join(chars)}{after}"


def invalid_emails() -> st.SearchStrategy[str]:
    """Strings no service may accept as an e-mail address."""
    return st.one_of(
        st.sampled_from(
            [
                "",
                "   ",
                "plainaddress",
                "@example.com",
                "user@",
                "user@localhost",
                "user@@example.com",
                "us er@example.com",
                "user@exa mple.com",
                "user@example..com",
                "user@.example.com",
                "user@example.com.",
                "user\x00@example.com",
                "user@example.com\x00",
                "us\ter@example.com",
                "user@exam\x7fple.com",
                "a@b@c.com",
            ]
        ),
        emails().map(lambda e: e.replace("@", "")),
        emails().map(lambda e: "x" * 250 + e),
        emails().map(lambda e: e.replace("@", " @ ")),
    )


# ------------------------------------------------------------------------------- datetimes


def aware_datetimes(
    *,
    min_value: datetime = datetime(2000, 1, 1),
    max_value: datetime = datetime(2100, 1, 1),
    utc_only: bool = False,
) -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes (UTC, or any whole-minute offset unless `utc_only`)."""
    zones: st.SearchStrategy[timezone] = (
        st.just(UTC)
        if utc_only
        else st.one_of(
            st.just(UTC),
            st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
        )
    )
    return st.datetimes(min_value=min_value, max_value=max_value, timezones=zones)


def naive_datetimes() -> st.SearchStrategy[datetime]:
    """Datetimes without a timezone: always a bad input to the library."""
    return st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1))


def reasonable_starts() -> st.SearchStrategy[datetime]:
    """Session start times within a year of `EPOCH`, UTC, whole microseconds."""
    return st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=365)).map(
        lambda d: EPOCH + d
    )


# ---------------------------------------------------------------------------- enumerations


def invalidation_reasons() -> st.SearchStrategy[InvalidationReason]:
    """Every invalidation reason."""
    return st.sampled_from(InvalidationReason)


def incident_types() -> st.SearchStrategy[IncidentType]:
    """Every incident type."""
    return st.sampled_from(IncidentType)


class LifecycleEvent(enum.StrEnum):
    """A booking event that must kill every link of the booking (SPEC §6 P1)."""

    MENTOR_CANCEL = "mentor_cancel"
    STUDENT_CANCEL = "student_cancel"
    NO_SHOW = "no_show"
    RESCHEDULE = "reschedule"
    RATING = "rating"
    INCIDENT = "incident"


def lifecycle_events() -> st.SearchStrategy[LifecycleEvent]:
    """Every lifecycle event."""
    return st.sampled_from(LifecycleEvent)


# --------------------------------------------------------------------- ratings, durations


def ratings() -> st.SearchStrategy[int]:
    """Valid ratings: 1 to 5."""
    return st.integers(1, 5)


def invalid_ratings() -> st.SearchStrategy[Any]:
    """Values `create_rating` must refuse as a rating."""
    return st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=6),
        st.just(True),
        st.just(False),
        st.floats(min_value=1, max_value=5),
        st.sampled_from(["3", None, b"4", [5]]),
    )


def durations(
    *,
    min_value: timedelta = timedelta(microseconds=1),
    max_value: timedelta = timedelta(days=7),
) -> st.SearchStrategy[timedelta]:
    """Positive session lengths (up to the service's 7-day maximum by default)."""
    return st.timedeltas(min_value=min_value, max_value=max_value)


def invalid_durations() -> st.SearchStrategy[Any]:
    """Values `book_session` must refuse as a duration."""
    return st.one_of(
        st.timedeltas(max_value=timedelta(0)),
        st.timedeltas(min_value=timedelta(days=7, microseconds=1), max_value=timedelta(days=900)),
        st.sampled_from([None, 15, "15m"]),
    )


# ------------------------------------------------------------------------- storage plans


@attrs.frozen
class TokenStep:
    """One step of a booking's history before the property runs.

    `issue` asks for an inbox link for the booking; `consume` consumes the link issued
    `index` links ago (modulo how many exist); `advance` moves the clock by `delta`.
    """

    action: str
    index: int = 0
    delta: timedelta = timedelta(0)


@attrs.frozen
class BookingPlan:
    """A booking to create, its history of links, and other guests' tokens on it.

    `extra_guests` get tokens bound to this booking through the ports directly (a host's
    data may hold those; the services never issue them), so that invalidation is exercised
    across several guests.
    """

    guest_email: str
    steps: tuple[TokenStep, ...]
    extra_guests: tuple[str, ...] = ()


@attrs.frozen
class WorldPlan:
    """Bookings to create (the first one is the property's subject) and inbox-only links."""

    bookings: tuple[BookingPlan, ...]
    inbox_links: int = 0


_STEP: Final = st.one_of(
    st.just(TokenStep("issue")),
    st.integers(0, 5).map(lambda i: TokenStep("consume", index=i)),
    st.sampled_from(
        [
            timedelta(seconds=1),
            timedelta(seconds=60),
            timedelta(minutes=5),
            timedelta(minutes=15),
            timedelta(minutes=16),
            timedelta(hours=2),
        ]
    ).map(lambda d: TokenStep("advance", delta=d)),
)


@st.composite
def booking_plans(
    draw: st.DrawFn,
    *,
    min_issues: int = 0,
    max_steps: int = 8,
    extra_guests: bool = True,
    email: st.SearchStrategy[str] | None = None,
) -> BookingPlan:
    """A booking with a random history of link requests, consumptions and clock moves."""
    guest = draw(email if email is not None else emails())
    steps = [TokenStep("issue") for _ in range(min_issues)]
    steps += draw(st.lists(_STEP, max_size=max_steps))
    draw(st.randoms(use_true_random=False)).shuffle(steps)
    extras: tuple[str, ...] = ()
    if extra_guests:
        extras = tuple(
            draw(st.lists(emails().filter(lambda e: e != guest), max_size=2, unique=True))
        )
    return BookingPlan(guest_email=guest, steps=tuple(steps), extra_guests=extras)


@st.composite
def world_plans(
    draw: st.DrawFn,
    *,
    min_bookings: int = 1,
    max_bookings: int = 3,
    min_issues: int = 0,
    extra_guests: bool = True,
) -> WorldPlan:
    """Several bookings (sometimes sharing a guest) and a few inbox-only links."""
    shared = draw(emails())
    email = st.one_of(st.just(shared), emails())
    bookings = draw(
        st.lists(
            booking_plans(min_issues=min_issues, extra_guests=extra_guests, email=email),
            min_size=min_bookings,
            max_size=max_bookings,
        )
    )
    return WorldPlan(bookings=tuple(bookings), inbox_links=draw(st.integers(0, 2)))
