"""In-memory adapters: shipped code, the default storage for tests and small hosts.

`InMemoryUnitOfWork` implements every port with real transaction semantics: a transaction
holds the store's lock from start to end (so transactions are serializable and racing
consumers see each other's commits), writes go to the store through an undo log, and a
rollback — explicit, by exception, or by leaving the block without commit — replays it.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import attrs

from magiclink.domain._enums import (
    AuditAction,
    BookingStatus,
    IncidentType,
    InvalidationReason,
)
from magiclink.domain._errors import DuplicateRating, InvalidInput, StorageError
from magiclink.domain._policy import booking_refusal, require_aware
from magiclink.domain._records import (
    AuditEntry,
    Booking,
    Guest,
    Incident,
    InvalidationResult,
    LinkMessage,
    MagicLinkToken,
    NewAuditEntry,
    Rating,
    TokenLookup,
)
from magiclink.ports._metrics import Metrics
from magiclink.ports._notifier import Notifier
from magiclink.ports._repositories import (
    AuditLog,
    BookingRepository,
    GuestRepository,
    IncidentRepository,
    RatingRepository,
    TokenRepository,
    TokenStats,
)
from magiclink.ports._unit_of_work import Transaction, UnitOfWork

K = TypeVar("K")
V = TypeVar("V")

_MISSING: Final = object()
# Undo marker: the entry `(index_list, _APPENDED, None)` undoes one `list.append`.
_APPENDED: Final = object()


class _Store:
    """The committed state, its secondary indexes and the lock that guards them."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.ids = itertools.count(1)
        self.guests: dict[int, Guest] = {}
        self.guest_by_email: dict[str, int] = {}
        self.bookings: dict[int, Booking] = {}
        self.booking_by_uid: dict[str, int] = {}
        self.tokens: dict[int, MagicLinkToken] = {}
        self.token_by_hash: dict[str, int] = {}
        self.tokens_by_booking: dict[int, list[int]] = {}
        self.tokens_by_guest: dict[int, list[int]] = {}
        self.ratings: dict[int, Rating] = {}
        self.rating_by_booking: dict[int, int] = {}
        self.incidents: dict[int, Incident] = {}
        self.audit: dict[int, AuditEntry] = {}
        self.audit_by_resource: dict[str, list[int]] = {}
        self.audit_by_guest: dict[int, list[int]] = {}
        self.audit_by_operation: dict[str, list[int]] = {}

    def next_id(self) -> int:
        return next(self.ids)


class _InMemoryTransaction(Transaction):
    """A transaction on a `_Store`: holds the lock, records undo entries, replays on rollback."""

    def __init__(self, store: _Store) -> None:
        self._store = store
        self._undo: list[tuple[Any, Any, Any]] = []  # (table, key, old) or (list, _APPENDED, None)
        self._open = True
        store.lock.acquire()

    # Built on first use: most transactions touch one or two repositories, and building
    # all six per transaction was the largest cost of an in-memory verification.
    @functools.cached_property
    def guests(self) -> InMemoryGuestRepository:  # type: ignore[override]
        return InMemoryGuestRepository(self)

    @functools.cached_property
    def tokens(self) -> InMemoryTokenRepository:  # type: ignore[override]
        return InMemoryTokenRepository(self)

    @functools.cached_property
    def bookings(self) -> InMemoryBookingRepository:  # type: ignore[override]
        return InMemoryBookingRepository(self)

    @functools.cached_property
    def ratings(self) -> InMemoryRatingRepository:  # type: ignore[override]
        return InMemoryRatingRepository(self)

    @functools.cached_property
    def incidents(self) -> InMemoryIncidentRepository:  # type: ignore[override]
        return InMemoryIncidentRepository(self)

    @functools.cached_property
    def audit(self) -> InMemoryAuditLog:  # type: ignore[override]
        return InMemoryAuditLog(self)

    @property
    def store(self) -> _Store:
        if not self._open:
            raise StorageError("Transaction is closed")
        return self._store

    def put(self, table: dict[K, V], key: K, value: V) -> None:
        """Write `table[key] = value`, remembering the old value for rollback."""
        self._undo.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def append_index(self, index: dict[K, list[int]], key: K, item: int) -> None:
        """Append `item` to `index[key]` in O(1), remembering how to undo it (R10.5: the
        cost of a write does not grow with the history of its guest or booking)."""
        entries = index.get(key)
        if entries is None:
            self.put(index, key, [item])
        else:
            entries.append(item)
            self._undo.append((entries, _APPENDED, None))

    def remove(self, table: dict[K, V], key: K) -> None:
        old = table.pop(key, _MISSING)
        if old is not _MISSING:
            self._undo.append((table, key, old))

    def commit(self) -> None:
        self.store  # noqa: B018 - raises when closed
        self._undo.clear()

    def rollback(self) -> None:
        for table, key, old in reversed(self._undo):
            if key is _APPENDED:
                table.pop()
            elif old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old
        self._undo.clear()

    def close(self) -> None:
        if self._open:
            try:
                self.rollback()
            finally:
                self._open = False
                self._store.lock.release()


class InMemoryUnitOfWork(UnitOfWork):
    """Every port in process memory, transactional and thread-safe."""

    def __init__(self) -> None:
        super().__init__()
        self._store = _Store()

    def transaction(self, *, readonly: bool = False) -> Transaction:
        """Begin a transaction; it holds the store's lock until it is closed.

        The lock is a thread's: under `magiclink.asyncio` a transaction runs from begin to
        close within one greenlet switch (the domain awaits nothing inside a transaction), so
        the tasks of one loop never interleave inside it.
        """
        return _InMemoryTransaction(self._store)


class _Repository:
    """Base of the in-memory repositories. Their methods implement the port methods of the
    same names and keep the contracts documented there (`magiclink.ports._repositories`)."""

    def __init__(self, tx: _InMemoryTransaction) -> None:
        self._tx = tx


class InMemoryGuestRepository(_Repository, GuestRepository):
    """Guests in memory."""

    def get(self, guest_id: int) -> Guest | None:
        return self._tx.store.guests.get(guest_id)

    def get_by_email(self, normalized_email: str) -> Guest | None:
        store = self._tx.store
        guest_id = store.guest_by_email.get(normalized_email)
        return None if guest_id is None else store.guests[guest_id]

    def get_or_create(
        self, normalized_email: str, *, now: datetime, last_request_at: datetime | None
    ) -> tuple[Guest, bool]:
        existing = self.get_by_email(normalized_email)
        if existing is not None:
            return existing, False
        store = self._tx.store
        guest = Guest(
            id=store.next_id(),
            normalized_email=normalized_email,
            blocked=False,
            last_request_at=last_request_at,
            created_at=now,
        )
        self._tx.put(store.guests, guest.id, guest)
        self._tx.put(store.guest_by_email, normalized_email, guest.id)
        return guest, True

    def claim_request_slot(self, guest_id: int, *, now: datetime, not_after: datetime) -> bool:
        store = self._tx.store
        guest = store.guests.get(guest_id)
        if guest is None:
            return False
        if guest.last_request_at is not None and guest.last_request_at > not_after:
            return False
        self._tx.put(store.guests, guest_id, attrs.evolve(guest, last_request_at=now))
        return True

    def set_blocked(self, guest_id: int, blocked: bool) -> Guest | None:
        store = self._tx.store
        guest = store.guests.get(guest_id)
        if guest is None:
            return None
        updated = attrs.evolve(guest, blocked=blocked)
        self._tx.put(store.guests, guest_id, updated)
        return updated


class InMemoryBookingRepository(_Repository, BookingRepository):
    """Bookings in memory."""

    def add(
        self,
        *,
        uid: str,
        mentor_id: int,
        guest_email: str,
        start_time: datetime,
        end_time: datetime,
        status: BookingStatus,
        revision: int,
    ) -> Booking:
        store = self._tx.store
        if uid in store.booking_by_uid:
            raise InvalidInput("Booking uid already exists")
        booking = Booking(
            id=store.next_id(),
            uid=uid,
            mentor_id=mentor_id,
            guest_email=guest_email,
            start_time=start_time,
            end_time=end_time,
            status=status,
            revision=revision,
        )
        self._tx.put(store.bookings, booking.id, booking)
        self._tx.put(store.booking_by_uid, uid, booking.id)
        return booking

    def get(self, booking_id: int, *, for_update: bool = False) -> Booking | None:
        return self._tx.store.bookings.get(booking_id)

    def get_by_uid(self, uid: str) -> Booking | None:
        store = self._tx.store
        booking_id = store.booking_by_uid.get(uid)
        return None if booking_id is None else store.bookings[booking_id]

    def update(self, booking: Booking) -> None:
        store = self._tx.store
        current = store.bookings.get(booking.id)
        if current is None:
            return
        # uid and parties are fixed at creation; only status, times and revision move.
        updated = attrs.evolve(
            current,
            status=booking.status,
            start_time=booking.start_time,
            end_time=booking.end_time,
            revision=booking.revision,
        )
        self._tx.put(store.bookings, booking.id, updated)

    def revoke_links(self, booking_id: int) -> None:
        store = self._tx.store
        current = store.bookings.get(booking_id)
        if current is not None:
            advanced = attrs.evolve(current, link_generation=current.link_generation + 1)
            self._tx.put(store.bookings, booking_id, advanced)


class InMemoryTokenRepository(_Repository, TokenRepository):
    """Tokens in memory, indexed by hash, booking and guest."""

    def add(
        self,
        *,
        token_hash: str,
        guest_id: int,
        booking_id: int | None,
        booking_revision: int | None,
        expires_at: datetime,
        created_at: datetime,
        link_generation: int = 0,
    ) -> MagicLinkToken:
        store = self._tx.store
        if token_hash in store.token_by_hash:
            raise StorageError("Token hash collision")
        token = MagicLinkToken(
            id=store.next_id(),
            token_hash=token_hash,
            guest_id=guest_id,
            booking_id=booking_id,
            booking_revision=booking_revision,
            expires_at=expires_at,
            used_at=None,
            invalidated=False,
            invalidation_reason=None,
            created_at=created_at,
            link_generation=link_generation,
        )
        self._tx.put(store.tokens, token.id, token)
        self._tx.put(store.token_by_hash, token_hash, token.id)
        if booking_id is not None:
            self._tx.append_index(store.tokens_by_booking, booking_id, token.id)
        self._tx.append_index(store.tokens_by_guest, guest_id, token.id)
        return token

    def lookup(self, token_hash: str) -> TokenLookup | None:
        store = self._tx.store
        token_id = store.token_by_hash.get(token_hash)
        if token_id is None:
            return None
        token = store.tokens[token_id]
        booking = None if token.booking_id is None else store.bookings.get(token.booking_id)
        return TokenLookup(
            token=token,
            guest=store.guests[token.guest_id],
            booking_status=None if booking is None else booking.status,
            booking_revision=None if booking is None else booking.revision,
            booking_link_generation=None if booking is None else booking.link_generation,
        )

    def get(self, token_id: int) -> MagicLinkToken | None:
        return self._tx.store.tokens.get(token_id)

    def _is_live(self, token: MagicLinkToken, now: datetime) -> bool:
        booking = (
            None if token.booking_id is None else self._tx.store.bookings.get(token.booking_id)
        )
        return booking_refusal(token, booking, now) is None

    def consume(self, token_id: int, *, now: datetime) -> bool:
        store = self._tx.store
        token = store.tokens.get(token_id)
        if token is None or not self._is_live(token, now):
            return False
        self._tx.put(store.tokens, token_id, attrs.evolve(token, used_at=now))
        return True

    def _kill(self, token: MagicLinkToken, reason: InvalidationReason, now: datetime) -> None:
        killed = attrs.evolve(
            token,
            invalidated=True,
            invalidation_reason=reason,
            used_at=token.used_at if token.used_at is not None else now,
        )
        self._tx.put(self._tx.store.tokens, token.id, killed)

    def invalidate(
        self, token_id: int, *, reason: InvalidationReason, now: datetime
    ) -> MagicLinkToken | None:
        token = self._tx.store.tokens.get(token_id)
        if token is None or token.invalidated:
            return None
        self._kill(token, reason, now)
        return token

    def invalidate_by_booking(
        self, booking_id: int, *, reason: InvalidationReason, now: datetime
    ) -> InvalidationResult:
        store = self._tx.store
        per_guest: dict[int, int] = defaultdict(int)
        for token_id in store.tokens_by_booking.get(booking_id, ()):
            token = store.tokens[token_id]
            if not token.invalidated:
                self._kill(token, reason, now)
                per_guest[token.guest_id] += 1
        return InvalidationResult(per_guest=dict(per_guest))

    def invalidate_live(
        self,
        *,
        guest_id: int,
        booking_id: int | None,
        reason: InvalidationReason,
        now: datetime,
    ) -> int:
        store = self._tx.store
        changed = 0
        for token_id in store.tokens_by_guest.get(guest_id, ()):
            token = store.tokens[token_id]
            if token.booking_id == booking_id and _unspent(token, now):
                self._kill(token, reason, now)
                changed += 1
        return changed

    def invalidate_all_live(
        self, *, guest_id: int, reason: InvalidationReason, now: datetime
    ) -> int:
        store = self._tx.store
        live = [
            store.tokens[token_id]
            for token_id in store.tokens_by_guest.get(guest_id, ())
            if _unspent(store.tokens[token_id], now)
        ]
        for token in live:
            self._kill(token, reason, now)
        return len(live)

    def list_by_booking(self, booking_id: int) -> list[MagicLinkToken]:
        store = self._tx.store
        return [store.tokens[i] for i in store.tokens_by_booking.get(booking_id, ())]

    def _expired_ids(self, expired_before: datetime) -> Iterator[int]:
        return (t.id for t in self._tx.store.tokens.values() if t.expires_at < expired_before)

    def purge_expired(self, *, expired_before: datetime, limit: int) -> int:
        store = self._tx.store
        doomed = list(itertools.islice(self._expired_ids(expired_before), max(limit, 0)))
        for token_id in doomed:
            token = store.tokens[token_id]
            self._tx.remove(store.tokens, token_id)
            self._tx.remove(store.token_by_hash, token.token_hash)
            for index, key in (
                (store.tokens_by_booking, token.booking_id),
                (store.tokens_by_guest, token.guest_id),
            ):
                if key is not None:
                    self._tx.put(index, key, [i for i in index[key] if i != token_id])
        return len(doomed)

    def count_expired(self, *, expired_before: datetime) -> int:
        return sum(1 for _ in self._expired_ids(expired_before))

    def stats(self, *, now: datetime) -> TokenStats:
        live = expired = used = invalidated = 0
        by_reason: dict[str, int] = defaultdict(int)
        for token in self._tx.store.tokens.values():
            if token.invalidated:
                invalidated += 1
                by_reason[str(token.invalidation_reason)] += 1
            elif token.used_at is not None:
                used += 1
            elif token.expires_at <= now:
                expired += 1
            else:
                live += 1
        return TokenStats(
            live=live,
            expired=expired,
            used=used,
            invalidated=invalidated,
            invalidated_by_reason=dict(by_reason),
        )


class InMemoryRatingRepository(_Repository, RatingRepository):
    """Ratings in memory, one per booking."""

    def add(
        self,
        *,
        booking_id: int,
        student_profile_id: str,
        rating: int,
        feedback: str | None,
        created_at: datetime,
    ) -> Rating:
        store = self._tx.store
        if booking_id in store.rating_by_booking:
            raise DuplicateRating()
        record = Rating(
            id=store.next_id(),
            booking_id=booking_id,
            student_profile_id=student_profile_id,
            rating=rating,
            feedback=feedback,
            created_at=created_at,
        )
        self._tx.put(store.ratings, record.id, record)
        self._tx.put(store.rating_by_booking, booking_id, record.id)
        return record

    def get_by_booking(self, booking_id: int) -> Rating | None:
        store = self._tx.store
        rating_id = store.rating_by_booking.get(booking_id)
        return None if rating_id is None else store.ratings[rating_id]


class InMemoryIncidentRepository(_Repository, IncidentRepository):
    """Incidents in memory."""

    def add(
        self,
        *,
        booking_uid: str,
        booking_id: int | None,
        student_profile_id: str,
        type: IncidentType,
        description: str,
        reported_by_user_id: int | None,
        created_at: datetime,
    ) -> Incident:
        store = self._tx.store
        incident = Incident(
            id=store.next_id(),
            booking_uid=booking_uid,
            booking_id=booking_id,
            student_profile_id=student_profile_id,
            type=type,
            description=description,
            reported_by_user_id=reported_by_user_id,
            created_at=created_at,
        )
        self._tx.put(store.incidents, incident.id, incident)
        return incident

    def list_by_booking_uid(self, booking_uid: str) -> list[Incident]:
        return [i for i in self._tx.store.incidents.values() if i.booking_uid == booking_uid]


class InMemoryAuditLog(_Repository, AuditLog):
    """The guest access log in memory, indexed by resource id and guest id."""

    def add_many(self, entries: Sequence[NewAuditEntry]) -> None:
        store = self._tx.store
        for new in entries:
            entry = AuditEntry(
                id=store.next_id(),
                guest_id=new.guest_id,
                endpoint=new.endpoint,
                action=new.action,
                resource_id=new.resource_id,
                success=new.success,
                metadata=new.metadata,
                created_at=new.created_at,
                operation_id=new.operation_id,
            )
            self._tx.put(store.audit, entry.id, entry)
            if entry.resource_id is not None:
                self._tx.append_index(store.audit_by_resource, entry.resource_id, entry.id)
            if entry.guest_id is not None:
                self._tx.append_index(store.audit_by_guest, entry.guest_id, entry.id)
            if entry.operation_id is not None:
                self._tx.append_index(store.audit_by_operation, entry.operation_id, entry.id)

    def list(
        self, *, booking_id: int | None = None, guest_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        store = self._tx.store
        if booking_id is not None:
            ids: Sequence[int] = store.audit_by_resource.get(str(booking_id), ())
        elif guest_id is not None:
            ids = store.audit_by_guest.get(guest_id, ())
        else:
            ids = list(store.audit)
        entries = [store.audit[i] for i in ids]
        if booking_id is not None and guest_id is not None:
            entries = [e for e in entries if e.guest_id == guest_id]
        entries.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return entries[: max(limit, 0)]

    def by_operation(self, operation_id: str) -> Sequence[AuditEntry]:
        store = self._tx.store
        return [store.audit[i] for i in store.audit_by_operation.get(operation_id, ())]

    def count_links_issued(self, guest_id: int, *, path: str, since: datetime) -> int:
        store = self._tx.store
        return sum(
            1
            for i in store.audit_by_guest.get(guest_id, ())
            if (entry := store.audit[i]).action == AuditAction.CREATE_TOKEN
            and entry.metadata.get("path") == path
            and entry.created_at > since
        )


def _unspent(token: MagicLinkToken, now: datetime) -> bool:
    """Not invalidated, not used, not expired: what the `invalidate_*live` writes kill."""
    return not token.invalidated and token.used_at is None and token.expires_at > now


class ManualClock:
    """A clock that moves only when told: `now()` and `advance(delta)`."""

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The clock's current time."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by `delta` (which may not be negative); the new time."""
        if delta < timedelta(0):
            raise ValueError("ManualClock only moves forward")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to `when` (timezone-aware)."""
        self._now = require_aware(when, "when")


class InMemoryNotifier(Notifier):
    """Keeps every message in `.sent` instead of mailing it."""

    def __init__(self) -> None:
        self.sent: list[LinkMessage] = []
        self._lock = threading.Lock()

    def send(self, message: LinkMessage) -> None:
        """Record the message."""
        with self._lock:
            self.sent.append(message)


def _label_key(labels: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((labels or {}).items()))


class InMemoryMetrics(Metrics):
    """Records every count and observation; answers totals and percentiles."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self._observations: dict[str, dict[tuple[tuple[str, str], ...], list[float]]] = defaultdict(
            lambda: defaultdict(list)
        )

    def increment(
        self, name: str, amount: float = 1.0, labels: Mapping[str, str] | None = None
    ) -> None:
        """Add `amount` to a counter."""
        with self._lock:
            self._counters[name][_label_key(labels)] += amount

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Record one observation."""
        with self._lock:
            self._observations[name][_label_key(labels)].append(value)

    @staticmethod
    def _matches(key: tuple[tuple[str, str], ...], labels: Mapping[str, str]) -> bool:
        present = dict(key)
        return all(present.get(k) == v for k, v in labels.items())

    def count(self, name: str, **labels: str) -> float:
        """The counter's total over every label set that includes `labels`."""
        with self._lock:
            series = self._counters.get(name, {})
            return sum(v for k, v in series.items() if self._matches(k, labels))

    def values(self, name: str, **labels: str) -> list[float]:
        """Every observation of `name` whose labels include `labels`."""
        with self._lock:
            series = self._observations.get(name, {})
            return [v for k, vs in series.items() if self._matches(k, labels) for v in vs]

    def percentile(self, name: str, q: float, **labels: str) -> float | None:
        """The q-th percentile (0-100, nearest rank) of the observations, or None if none."""
        data = sorted(self.values(name, **labels))
        if not data:
            return None
        # round() first: q / 100 * n in floats gives 7.000000000000001 for p7 of 100 values.
        rank = max(1, math.ceil(round(q * len(data) / 100, 9)))
        return data[min(rank, len(data)) - 1]

    def summary(self, name: str, **labels: str) -> dict[str, float | None]:
        """count, p50, p95 and p99 of an observation series."""
        return {
            "count": float(len(self.values(name, **labels))),
            "p50": self.percentile(name, 50, **labels),
            "p95": self.percentile(name, 95, **labels),
            "p99": self.percentile(name, 99, **labels),
        }

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Every counter, by name and rendered label set (`reason=x,outcome=y`)."""
        with self._lock:
            return {
                name: {",".join(f"{k}={v}" for k, v in key): value for key, value in series.items()}
                for name, series in self._counters.items()
            }


__all__ = [
    "InMemoryAuditLog",
    "InMemoryBookingRepository",
    "InMemoryGuestRepository",
    "InMemoryIncidentRepository",
    "InMemoryMetrics",
    "InMemoryNotifier",
    "InMemoryRatingRepository",
    "InMemoryTokenRepository",
    "InMemoryUnitOfWork",
    "ManualClock",
]
