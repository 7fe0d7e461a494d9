"""`InMemoryTokenRepository`: magic-link tokens in memory, indexed by hash, booking and guest.

`store.tokens` keeps each token as it was added; a consume or an invalidation writes only
the change, `(reason or None, used_at)`, to `store.token_changes` (`_Change`), and the
changed record is built when it is read (`_current`). Building it at write time was most of
the cost of a batch invalidation (one record per token) and a measurable part of a consume.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from magiclink.adapters.memory._repositories import _Repository
from magiclink.adapters.memory._store import _MISSING, _Change
from magiclink.domain._enums import InvalidationReason
from magiclink.domain._errors import StorageError
from magiclink.domain._policy import booking_refusal
from magiclink.domain._records import InvalidationResult, MagicLinkToken, TokenLookup
from magiclink.domain._replace import replacer
from magiclink.ports._repositories import TokenRepository, TokenStats

_numbered = replacer(MagicLinkToken, "id")
_used = replacer(MagicLinkToken, "used_at")
_killed = replacer(MagicLinkToken, "invalidated", "invalidation_reason", "used_at")


def _current(token: MagicLinkToken, change: _Change | None) -> MagicLinkToken:
    """The record of a stored token with its change, if any, applied (built now)."""
    if change is None:
        return token
    reason, used_at = change
    if reason is None:
        return _used(token, used_at)
    return _killed(token, True, reason, used_at)


def _killing(
    token: MagicLinkToken, change: _Change | None, reason: InvalidationReason, now: datetime
) -> _Change | None:
    """The change that invalidates the token for `reason` at `now` (a consumed token keeps
    its time of use); None when it is invalidated already."""
    if change is not None:
        killed_for, used_at = change
        return None if killed_for is not None else (reason, used_at)
    if token.invalidated:
        return None
    return (reason, token.used_at if token.used_at is not None else now)


def _unspent(token: MagicLinkToken, change: _Change | None, now: datetime) -> bool:
    """Not invalidated, not used, not expired: what the `invalidate_*live` writes kill."""
    return (
        change is None
        and not token.invalidated
        and token.used_at is None
        and token.expires_at > now
    )


class InMemoryTokenRepository(_Repository, TokenRepository):
    """Tokens in memory, indexed by hash, booking and guest."""

    def add(self, token: MagicLinkToken) -> MagicLinkToken:
        store = self._tx.store
        if token.token_hash in store.token_by_hash:
            raise StorageError("Token hash collision")
        unique = (store.token_by_hash, token.token_hash)
        stored = self._stored(store.tokens, token, _numbered, unique)
        if stored.booking_id is not None:
            self._tx.append_index(store.tokens_by_booking, stored.booking_id, stored.id)
        else:
            self._tx.append_index(store.inbox_by_guest, stored.guest_id, stored.id)
        self._tx.append_index(store.tokens_by_guest, stored.guest_id, stored.id)
        return stored

    def lookup(self, token_hash: str) -> TokenLookup | None:
        store = self._tx.store
        token_id = store.token_by_hash.get(token_hash)
        if token_id is None:
            return None
        token = store.tokens[token_id]
        change = store.token_changes.get(token_id)
        if change is not None:
            token = _current(token, change)
        booking = None if token.booking_id is None else store.bookings.get(token.booking_id)
        return TokenLookup(
            token=token,
            guest=store.guests[token.guest_id],
            booking_status=None if booking is None else booking.status,
            booking_revision=None if booking is None else booking.revision,
            booking_link_generation=None if booking is None else booking.link_generation,
        )

    def get(self, token_id: int) -> MagicLinkToken | None:
        store = self._tx.store
        token = store.tokens.get(token_id)
        return None if token is None else _current(token, store.token_changes.get(token_id))

    def consume(self, token_id: int, *, now: datetime) -> bool:
        store = self._tx.store
        token = store.tokens.get(token_id)
        if token is None or token_id in store.token_changes:
            return False  # unknown, or consumed or invalidated already
        booking = None if token.booking_id is None else store.bookings.get(token.booking_id)
        if booking_refusal(token, booking, now) is not None:
            return False
        self._tx.put(store.token_changes, token_id, (None, now))
        return True

    def _kill(self, token: MagicLinkToken, reason: InvalidationReason, now: datetime) -> None:
        """Invalidate an unspent token (one without a change)."""
        used_at = token.used_at if token.used_at is not None else now
        self._tx.put(self._tx.store.token_changes, token.id, (reason, used_at))

    def invalidate(
        self, token_id: int, *, reason: InvalidationReason, now: datetime
    ) -> MagicLinkToken | None:
        store = self._tx.store
        token = store.tokens.get(token_id)
        if token is None:
            return None
        change = store.token_changes.get(token_id)
        killed = _killing(token, change, reason, now)
        if killed is None:
            return None
        self._tx.put(store.token_changes, token_id, killed)
        return _current(token, change)

    def invalidate_by_booking(
        self, booking_id: int, *, reason: InvalidationReason, now: datetime
    ) -> InvalidationResult:
        store = self._tx.store
        tokens, changes = store.tokens, store.token_changes
        log = self._tx._undo.append  # `put`, inlined: the loop runs once per token
        per_guest: dict[int, int] = {}
        for token_id in store.tokens_by_booking.get(booking_id, ()):
            token = tokens[token_id]
            change = changes.get(token_id)
            killed = _killing(token, change, reason, now)
            if killed is not None:
                log((changes, token_id, _MISSING if change is None else change))
                changes[token_id] = killed
                per_guest[token.guest_id] = per_guest.get(token.guest_id, 0) + 1
        return InvalidationResult(per_guest=per_guest)

    def invalidate_live(
        self, *, guest_id: int, booking_id: int | None, reason: InvalidationReason, now: datetime
    ) -> int:
        store = self._tx.store
        # A pair's links are found by the booking's own index, or the guest's inbox index:
        # never by the guest's whole history.
        if booking_id is None:
            return self._supersede_inbox(guest_id, reason, now)
        changed = 0
        for token_id in store.tokens_by_booking.get(booking_id, ()):
            token = store.tokens[token_id]
            if (
                token.guest_id == guest_id
                and token.booking_id == booking_id
                and _unspent(token, store.token_changes.get(token_id), now)
            ):
                self._kill(token, reason, now)
                changed += 1
        return changed

    def _supersede_inbox(self, guest_id: int, reason: InvalidationReason, now: datetime) -> int:
        """`invalidate_live` of the guest's inbox links. The ids it passes over that are
        spent (used or invalidated, now or before) leave the inbox index, which therefore
        holds the guest's unspent inbox links only: the cost does not grow with history."""
        store = self._tx.store
        ids = store.inbox_by_guest.get(guest_id)
        if not ids:
            return 0
        changes = store.token_changes
        unspent: list[int] = []
        changed = 0
        for token_id in ids:
            token = store.tokens[token_id]
            change = changes.get(token_id)
            if _unspent(token, change, now):
                self._kill(token, reason, now)
                changed += 1
            elif change is None and not token.invalidated and token.used_at is None:
                unspent.append(token_id)  # expired at `now`, not spent: it stays
        if len(unspent) < len(ids):
            self._tx.put(store.inbox_by_guest, guest_id, unspent)
        return changed

    def invalidate_all_live(
        self, *, guest_id: int, reason: InvalidationReason, now: datetime
    ) -> int:
        store = self._tx.store
        changes = store.token_changes
        live = [
            token
            for token_id in store.tokens_by_guest.get(guest_id, ())
            if _unspent(token := store.tokens[token_id], changes.get(token_id), now)
        ]
        for token in live:
            self._kill(token, reason, now)
        return len(live)

    def list_by_booking(self, booking_id: int) -> list[MagicLinkToken]:
        store = self._tx.store
        tokens, changes = store.tokens, store.token_changes
        return [
            _current(tokens[i], changes.get(i)) for i in store.tokens_by_booking.get(booking_id, ())
        ]

    def _expired_ids(self, expired_before: datetime) -> Iterator[int]:
        return (t.id for t in self._tx.store.tokens.values() if t.expires_at < expired_before)

    def purge_expired(self, *, expired_before: datetime, limit: int) -> int:
        store = self._tx.store
        doomed = list(itertools.islice(self._expired_ids(expired_before), max(limit, 0)))
        bookings: dict[int, None] = {}
        guests: dict[int, None] = {}
        for token_id in doomed:
            token = store.tokens[token_id]
            self._tx.remove(store.tokens, token_id)
            self._tx.remove(store.token_by_hash, token.token_hash)
            self._tx.remove(store.token_changes, token_id)
            if token.booking_id is not None:
                bookings[token.booking_id] = None
            guests[token.guest_id] = None
        # Each touched index list is rebuilt once, not once per purged token of its key.
        gone = frozenset(doomed)
        for index, keys in (
            (store.tokens_by_booking, bookings),
            (store.tokens_by_guest, guests),
            (store.inbox_by_guest, guests),
        ):
            for key in keys:
                ids = index.get(key, [])
                kept = [i for i in ids if i not in gone]
                if len(kept) < len(ids):
                    self._tx.put(index, key, kept)
        return len(doomed)

    def count_expired(self, *, expired_before: datetime) -> int:
        return sum(1 for _ in self._expired_ids(expired_before))

    def stats(self, *, now: datetime) -> TokenStats:
        live = expired = used = invalidated = 0
        by_reason: dict[str, int] = defaultdict(int)
        store = self._tx.store
        changes = store.token_changes
        for token_id, token in store.tokens.items():
            change = changes.get(token_id)
            if change is not None:  # consumed (reason None) or invalidated
                if change[0] is None:
                    used += 1
                else:
                    invalidated += 1
                    by_reason[str(change[0])] += 1
            elif token.invalidated:
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


__all__ = ["InMemoryTokenRepository"]
