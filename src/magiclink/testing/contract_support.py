"""The base of the port contract suite: the `uow` fixture, a fixed time base and builders.

Every contract class in `magiclink.testing` derives from `ContractBase`. A host subclass
supplies storage in one of two ways:

* implement `make_uow()` (return a unit of work on empty storage), or
* override the `uow` fixture, when the storage comes from a pytest fixture (an engine, a
  database per test).

Times are inputs to the ports, so the suite needs no clock: everything is placed around the
fixed instant `T0`.
"""

from __future__ import annotations

import enum
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeVar

import pytest

from magiclink import (
    AuditAction,
    Booking,
    BookingStatus,
    Guest,
    Incident,
    IncidentType,
    MagicLinkToken,
    Rating,
)
from magiclink.ports import UNSAVED_ID, NewAuditEntry, Transaction, UnitOfWork

T = TypeVar("T")

T0: Final = datetime(2030, 1, 1, 9, 30, tzinfo=UTC)
"""The suite's fixed "now": every time a contract test stores is placed around it."""

MICRO: Final = timedelta(microseconds=1)
"""The smallest step a stored time must keep (boundaries are tested one microsecond apart)."""

TTL: Final = timedelta(minutes=15)
"""The standard link lifetime, used for tokens the suite creates."""

MISSING_ID: Final = 2_000_000_001
"""An id that no record of a fresh store has (tokens may point at it as a vanished booking).

Below 2**31, so that it fits a host's 32-bit id column too."""

LOCK_GRACE_SECONDS: Final = 0.5
"""How long a test holds a transaction open while another thread tries to read or lock.

Never a timing assertion: the expected outcome is the same whether the other thread answers
during the grace (snapshot isolation) or stays blocked until the holder ends (locking)."""

JOIN_SECONDS: Final = 120.0
"""A bound against hangs when joining a helper thread; never an assertion about speed."""


class _Revision(enum.Enum):
    FROM_BOOKING = enum.auto()


FROM_BOOKING: Final = _Revision.FROM_BOOKING
"""Default of `ContractBase.add_token(booking_revision=...)`: copy the booking's revision."""


_RATING: Final[dict[str, Any]] = {
    "student_profile_id": "p",
    "rating": 4,
    "feedback": None,
    "created_at": T0,
}
"""What `ContractBase.add_rating` stores unless told otherwise."""

_INCIDENT: Final[dict[str, Any]] = {
    "student_profile_id": "profile",
    "type": IncidentType.OTHER,
    "description": "",
    "reported_by_user_id": None,
    "created_at": T0,
}
"""What `ContractBase.add_incident` stores unless told otherwise."""


class Background:
    """`work` run on a helper thread, remembering what it raised and when it ended.

    Attributes:
        errors: every exception `work` raised (a test usually asserts it is empty).
        done: set when `work` has ended, whether it returned or raised.
    """

    def __init__(self, work: Callable[[], object], *, name: str) -> None:
        self.errors: list[BaseException] = []
        self.done = threading.Event()
        self._work = work
        self._thread = threading.Thread(target=self._run, name=name)

    def _run(self) -> None:
        try:
            self._work()
        except BaseException as error:
            self.errors.append(error)
        finally:
            self.done.set()

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def join(self) -> None:
        """Wait (at most `JOIN_SECONDS`) for the thread; fail if it is still running."""
        self._thread.join(JOIN_SECONDS)
        assert not self._thread.is_alive()


def new_hash() -> str:
    """A fresh, unique token hash (64 lowercase hex characters, like a SHA-256 digest)."""
    return secrets.token_hex(32)


def new_uid() -> str:
    """A fresh, unique booking uid."""
    return f"contract-{secrets.token_hex(8)}"


def new_email() -> str:
    """A fresh, unique normalized e-mail address."""
    return f"guest-{secrets.token_hex(6)}@example.org"


class ContractBase:
    """Storage for the contract tests and small builders shared by every port's tests.

    Subclass it (through `UnitOfWorkContract` or one port's contract) and either implement
    `make_uow()` or override the `uow` fixture. Each test gets a new unit of work; it must
    start on empty storage, because some ports answer for the whole store (`stats`,
    `purge_expired`, `count_expired`, unfiltered `audit.list`).
    """

    def make_uow(self) -> UnitOfWork:
        """A unit of work on new, empty storage; override it (or the `uow` fixture)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement make_uow() or override the `uow` fixture"
        )

    @pytest.fixture
    def uow(self) -> UnitOfWork:
        """The unit of work under test: `make_uow()` unless a subclass overrides this fixture."""
        return self.make_uow()

    # ------------------------------------------------------------------ running

    @staticmethod
    def run(uow: UnitOfWork, work: Callable[[Transaction], T]) -> T:
        """Run `work` in a new transaction, commit it, and return what `work` returned."""
        with uow.transaction() as tx:
            result = work(tx)
            tx.commit()
        return result

    @staticmethod
    def read(uow: UnitOfWork, work: Callable[[Transaction], T]) -> T:
        """Run `work` in a new transaction that is left without commit (a pure read)."""
        with uow.transaction() as tx:
            return work(tx)

    # ------------------------------------------------------------------ builders

    @staticmethod
    def add_guest(
        tx: Transaction, email: str | None = None, *, last_request_at: datetime | None = None
    ) -> Guest:
        """Create a guest (a fresh e-mail unless one is given) and return it."""
        guest, _ = tx.guests.get_or_create(
            email if email is not None else new_email(), now=T0, last_request_at=last_request_at
        )
        return guest

    @staticmethod
    def add_booking(
        tx: Transaction,
        *,
        guest_email: str | None = None,
        status: BookingStatus = BookingStatus.SCHEDULED,
        revision: int = 0,
        uid: str | None = None,
        mentor_id: int = 42,
    ) -> Booking:
        """Create a booking one day after `T0`, lasting 15 minutes, and return it."""
        start = T0 + timedelta(days=1)
        return tx.bookings.add(
            Booking(
                id=UNSAVED_ID,
                uid=uid if uid is not None else new_uid(),
                mentor_id=mentor_id,
                guest_email=guest_email if guest_email is not None else new_email(),
                start_time=start,
                end_time=start + timedelta(minutes=15),
                status=status,
                revision=revision,
            )
        )

    @staticmethod
    def add_token(
        tx: Transaction,
        guest: Guest,
        booking: Booking | int | None = None,
        *,
        expires_at: datetime = T0 + TTL,
        created_at: datetime = T0,
        booking_revision: int | Literal[_Revision.FROM_BOOKING] | None = FROM_BOOKING,
        token_hash: str | None = None,
    ) -> MagicLinkToken:
        """Store a token for `guest` (and `booking`: a record, a bare id, or None).

        By default the token takes the booking's revision, as issuing does (None for a bare id
        or no booking); pass an int or None to store that value instead.
        """
        if isinstance(booking, Booking):
            booking_id: int | None = booking.id
            current: int | None = booking.revision
        else:
            booking_id, current = booking, None
        revision = current if booking_revision is FROM_BOOKING else booking_revision
        return tx.tokens.add(
            MagicLinkToken.new(
                token_hash=token_hash if token_hash is not None else new_hash(),
                guest_id=guest.id,
                booking_id=booking_id,
                booking_revision=revision,
                link_generation=booking.link_generation if isinstance(booking, Booking) else 0,
                expires_at=expires_at,
                created_at=created_at,
            )
        )

    @staticmethod
    def add_rating(tx: Transaction, booking_id: int, **fields: Any) -> Rating:
        """Store a rating of `booking_id`: the `_RATING` defaults, overridden by `fields`."""
        return tx.ratings.add(Rating(id=UNSAVED_ID, booking_id=booking_id, **{**_RATING, **fields}))

    @staticmethod
    def add_incident(
        tx: Transaction, booking_uid: str, booking_id: int | None = None, **fields: Any
    ) -> Incident:
        """Store an incident of `booking_uid`: the `_INCIDENT` defaults, overridden by
        `fields`."""
        return tx.incidents.add(
            Incident(
                id=UNSAVED_ID,
                booking_uid=booking_uid,
                booking_id=booking_id,
                **{**_INCIDENT, **fields},
            )
        )

    @staticmethod
    def audit_entry(
        *,
        guest_id: int | None = None,
        resource_id: str | None = None,
        created_at: datetime = T0,
        action: str = AuditAction.INVALIDATE_TOKEN,
        success: bool = True,
        metadata: dict[str, object] | None = None,
        operation_id: str | None = None,
    ) -> NewAuditEntry:
        """A new audit entry with sensible defaults."""
        return NewAuditEntry(
            guest_id=guest_id,
            endpoint="contract",
            action=action,
            resource_id=resource_id,
            success=success,
            metadata=metadata if metadata is not None else {},
            created_at=created_at,
            operation_id=operation_id,
        )


__all__ = [
    "FROM_BOOKING",
    "JOIN_SECONDS",
    "LOCK_GRACE_SECONDS",
    "MICRO",
    "MISSING_ID",
    "T0",
    "TTL",
    "Background",
    "ContractBase",
    "new_email",
    "new_hash",
    "new_uid",
]
