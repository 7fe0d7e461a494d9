"""GuestService: issue, verify, consume and invalidate guest magic links, with their audit."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import attrs

from magiclink.domain._enums import AuditAction, InvalidationReason, IssuePath, RefusalReason
from magiclink.domain._errors import (
    AccessDenied,
    BookingClosed,
    BookingNotFound,
    InvalidInput,
    InvalidToken,
    RateLimited,
    StorageError,
    TokenExpiredOrUsed,
)
from magiclink.domain._observability import Events, elapsed_ms, log_event
from magiclink.domain._policy import (
    generate_raw_token,
    hash_token,
    is_well_formed,
    normalize_email,
    refusal_reason,
    require_duration,
    require_id,
    require_optional_id,
    require_text,
)
from magiclink.domain._records import (
    AuditEntry,
    Booking,
    Guest,
    IssuedToken,
    MagicLinkToken,
    NewAuditEntry,
    Settings,
    TokenLookup,
    VerifiedToken,
)
from magiclink.domain._scope import require_scope, scope_refusal, wrong_booking
from magiclink.domain._transactions import rerun, run_in_transaction
from magiclink.ports._clock import Clock, SystemClock
from magiclink.ports._metrics import MetricNames, Metrics, NullMetrics
from magiclink.ports._repositories import TokenStats
from magiclink.ports._unit_of_work import Transaction, UnitOfWork

ENDPOINT: Final = "magiclink"
MAX_AUDIT_TEXT: Final = 255
MAX_AUDIT_LIMIT: Final = 10_000
MAX_PURGE_BATCH: Final = 100_000
# §9.4: the hourly cap counts the guest-initiated links of the last hour.
_CAP_WINDOW: Final = timedelta(hours=1)
HOURLY_CAP_MESSAGE: Final = "Too many links requested this hour: try again later"

_OUTCOME_ACCEPTED: Final = "accepted"
_OUTCOME_INVALID: Final = "invalid"
# Presenting a consumed link again is the signature of a forwarded or stolen link (§5.7).
_OUTCOMES: Final[Mapping[RefusalReason, str]] = {
    reason: "reuse" if reason is RefusalReason.USED else str(reason) for reason in RefusalReason
}


def parse_reason(reason: object) -> InvalidationReason:
    """The `InvalidationReason` named by `reason` (a member or its value), else `InvalidInput`."""
    if isinstance(reason, InvalidationReason):
        return reason
    if isinstance(reason, str):
        try:
            return InvalidationReason(reason)
        except ValueError:
            pass
    raise InvalidInput("Unknown invalidation reason")


class GuestService:
    """The single owner of guest links: every issue, check and invalidation goes through it.

    All methods validate their input first (`InvalidInput`, `InvalidToken`), then run in one
    short transaction of the shared unit of work. Only `MagicLinkError` subclasses escape.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        clock: Clock | None = None,
        settings: Settings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._uow = uow
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.settings = settings if settings is not None else Settings()
        self._metrics: Metrics = metrics if metrics is not None else NullMetrics()

    @property
    def clock(self) -> Clock:
        """The clock this service reads (lifecycle services default to it)."""
        return self._clock

    @property
    def metrics(self) -> Metrics:
        """The metrics this service records to (lifecycle services default to it)."""
        return self._metrics

    # ------------------------------------------------------------------ issuing

    def request_inbox_link(self, email: str, booking_id: int | None = None) -> IssuedToken:
        """Issue a link on the guest's own request (optionally for one of their bookings).

        Checks, first failure raising: malformed e-mail or id → `InvalidInput`; blocked guest →
        `AccessDenied`; unknown booking or booking of another e-mail → the same
        `AccessDenied("Access denied")` after the same statements (§9.5: no enumeration);
        cancelled or no-show booking → `BookingClosed`; a previous request less than
        `Settings.request_interval` ago, or `Settings.max_links_per_hour` guest-initiated links
        already issued in the last hour (§9.4) → `RateLimited`. A refused request writes
        nothing.
        """
        normalized = normalize_email(email)
        booking_id = require_optional_id(booking_id, "booking_id")
        now = self._clock.now()
        not_after = now - self.settings.request_interval
        cap = self.settings.max_links_per_hour
        window_start = now - _CAP_WINDOW
        raw = generate_raw_token()

        def work(tx: Transaction) -> tuple[MagicLinkToken, int]:
            guest = tx.guests.get_by_email(normalized)
            if guest is not None and guest.blocked:
                raise AccessDenied()
            booking = (
                None
                if booking_id is None
                else _open_booking_of(tx, booking_id, normalized, guest_path=True)
            )
            if guest is None:
                guest, created = tx.guests.get_or_create(normalized, now=now, last_request_at=now)
                if not created and guest.blocked:
                    raise AccessDenied()
            else:
                created = False
            if not created:
                # The slot claim writes the guest row, which serializes this guest's racing
                # requests; the count after it therefore sees every earlier committed link.
                if not tx.guests.claim_request_slot(guest.id, now=now, not_after=not_after):
                    raise RateLimited()
                if (
                    cap is not None
                    and tx.audit.count_links_issued(
                        guest.id, path=str(IssuePath.INBOX), since=window_start
                    )
                    >= cap
                ):
                    raise RateLimited(HOURLY_CAP_MESSAGE)
            return self._store_token(tx, guest, booking, raw, now, IssuePath.INBOX)

        token, superseded = run_in_transaction(self._uow, work, landed=_token_stored(raw))
        return self._issued(raw, token, IssuePath.INBOX, superseded, normalized)

    def issue_booking_link(
        self,
        email: str,
        booking_id: int,
        *,
        within: Callable[[Transaction, MagicLinkToken, Booking], None] | None = None,
    ) -> IssuedToken:
        """Issue a booking's link on the system path (booking creation).

        Never rate-limited and never touches `last_request_at`. Raises `InvalidInput`,
        `AccessDenied` (blocked guest, or an e-mail that is not the booking's),
        `BookingNotFound`, `BookingClosed`. `within(tx, token, booking)`, if given, runs in
        the issuing transaction (the outbox records its link there, §11.2); what it raises
        rolls the issue back and propagates.
        """
        return self._issue_system_link(email, booking_id, IssuePath.BOOKING, within)

    def generate_token_for_rescheduled_booking(self, email: str, booking_id: int) -> str:
        """Issue the fresh link of a rescheduled booking and return its raw token (R2.2).

        The system path: never rate-limited, `last_request_at` untouched, standard TTL.
        Raises like `issue_booking_link`.
        """
        return self._issue_system_link(email, booking_id, IssuePath.RESCHEDULE).raw

    def _issue_system_link(
        self,
        email: str,
        booking_id: int,
        path: IssuePath,
        within: Callable[[Transaction, MagicLinkToken, Booking], None] | None = None,
    ) -> IssuedToken:
        normalized = normalize_email(email)
        booking_id = require_id(booking_id, "booking_id")
        now = self._clock.now()
        raw = generate_raw_token()

        def work(tx: Transaction) -> tuple[MagicLinkToken, int]:
            guest = tx.guests.get_by_email(normalized)
            if guest is not None and guest.blocked:
                raise AccessDenied()
            booking = _open_booking_of(tx, booking_id, normalized)
            if guest is None:
                guest, _ = tx.guests.get_or_create(normalized, now=now, last_request_at=None)
                if guest.blocked:
                    raise AccessDenied()
            stored = self._store_token(tx, guest, booking, raw, now, path)
            if within is not None:
                within(tx, stored[0], booking)
            return stored

        token, superseded = run_in_transaction(self._uow, work, landed=_token_stored(raw))
        return self._issued(raw, token, path, superseded, normalized)

    def _store_token(
        self,
        tx: Transaction,
        guest: Guest,
        booking: Booking | None,
        raw: str,
        now: datetime,
        path: IssuePath,
    ) -> tuple[MagicLinkToken, int]:
        """Store the token and its CREATE_TOKEN entry (which records the issue `path`, what
        the hourly cap counts, §9.4); with supersede on, first revoke the pair's earlier live
        links (§5.8). Returns the token and how many it superseded.

        Racing issuers of one pair are serialized before this point: a booking's links by
        the booking row lock (`_open_booking_of`), inbox links by the guest row write of the
        rate limit. So the supersede UPDATE of the later one sees the earlier one's token.
        """
        booking_id = None if booking is None else booking.id
        entries: list[NewAuditEntry] = []
        superseded = 0
        if self.settings.supersede_previous_links:
            superseded = tx.tokens.invalidate_live(
                guest_id=guest.id,
                booking_id=booking_id,
                reason=InvalidationReason.SUPERSEDED,
                now=now,
            )
            if superseded:
                entries.append(
                    _invalidation_entry(
                        guest.id, booking_id, InvalidationReason.SUPERSEDED, superseded, now
                    )
                )
        token = tx.tokens.add(
            token_hash=hash_token(raw),
            guest_id=guest.id,
            booking_id=booking_id,
            booking_revision=None if booking is None else booking.revision,
            link_generation=0 if booking is None else booking.link_generation,
            expires_at=now + self.settings.token_ttl,
            created_at=now,
        )
        entries.append(
            NewAuditEntry(
                guest_id=guest.id,
                endpoint=ENDPOINT,
                action=AuditAction.CREATE_TOKEN,
                resource_id=_resource(booking_id),
                success=True,
                metadata={"token_id": token.id, "path": str(path)},
                created_at=now,
            )
        )
        tx.audit.add_many(entries)
        return token, superseded

    def _issued(
        self, raw: str, token: MagicLinkToken, path: IssuePath, superseded: int, email: str
    ) -> IssuedToken:
        self._metrics.increment(MetricNames.TOKENS_ISSUED, labels={"path": str(path)})
        if superseded:
            self._record_invalidation(InvalidationReason.SUPERSEDED, superseded)
        log_event(
            logging.INFO,
            Events.TOKEN_ISSUED,
            token_id=token.id,
            guest_id=token.guest_id,
            booking_id=token.booking_id,
            path=str(path),
        )
        return IssuedToken(
            raw=raw,
            token_id=token.id,
            guest_id=token.guest_id,
            booking_id=token.booking_id,
            expires_at=token.expires_at,
            email=email,
        )

    # ------------------------------------------------------------- verification

    def verify_token(self, raw: str, *, booking_id: int | None = None) -> VerifiedToken:
        """Check a link without changing it (R7); safe for mail scanners and previews.

        Raises, in this order: `InvalidToken` (malformed or unknown), `AccessDenied` (blocked
        guest), `TokenExpiredOrUsed` (invalidated, used, expired, or its booking cancelled,
        no-show, rescheduled or gone). A refusal of a known token is audited. With
        `booking_id`, a token out of that booking's scope raises `AccessDenied` (§9.1).
        """
        token_hash = self._hash_or_refuse(raw, "verify")
        scope = require_scope(booking_id)
        now = self._clock.now()

        def work(tx: Transaction) -> tuple[TokenLookup | None, RefusalReason | None]:
            lookup = tx.tokens.lookup(token_hash)
            if lookup is None:
                return None, None
            reason = refusal_reason(lookup, now)
            return lookup, reason if reason is not None else scope_refusal(tx, lookup, scope)

        lookup, reason = run_in_transaction(self._uow, work, readonly=True)
        if lookup is None:
            raise self._unknown("verify")
        if reason is not None:
            raise self._refuse(lookup, reason, now, "verify")
        self._count_verification("verify", _OUTCOME_ACCEPTED)
        # §9.7: a verify stays read-only (scanner-safe); its success is a log event only.
        log_event(
            logging.INFO,
            Events.TOKEN_VERIFIED,
            token_id=lookup.token.id,
            guest_id=lookup.guest.id,
            booking_id=lookup.token.booking_id,
        )
        return VerifiedToken(token=lookup.token, guest=lookup.guest)

    def consume_token(self, raw: str, *, booking_id: int | None = None) -> VerifiedToken:
        """Verify a link (R7) and mark it used, atomically: of racing callers exactly one wins.

        Raises like `verify_token`; a caller that loses the race gets `TokenExpiredOrUsed`.
        Returns the token as it is after consumption (`used_at` set). A scope refusal (§9.1)
        consumes nothing.
        """
        token_hash = self._hash_or_refuse(raw, "consume")
        scope = require_scope(booking_id)
        now = self._clock.now()

        def work(tx: Transaction) -> tuple[TokenLookup | None, RefusalReason | None]:
            lookup = tx.tokens.lookup(token_hash)
            if lookup is None:
                return None, None
            reason = refusal_reason(lookup, now) or scope_refusal(tx, lookup, scope)
            if reason is None and not tx.tokens.consume(lookup.token.id, now=now):
                reason = RefusalReason.USED  # a concurrent caller consumed it first
            if reason is None:
                # §9.7: the success is audited in the consume's own transaction.
                target = scope if scope is not None else lookup.token.booking_id
                tx.audit.add_many([_consume_entry(lookup.token, target, now)])
            return lookup, reason

        def landed(tx: Transaction) -> tuple[TokenLookup | None, RefusalReason | None] | None:
            lookup = tx.tokens.lookup(token_hash)
            won = lookup is not None and lookup.token.used_at == now
            return (lookup, None) if won else None

        lookup, reason = run_in_transaction(self._uow, work, landed=landed)
        if lookup is None:
            raise self._unknown("consume")
        if reason is not None:
            raise self._refuse(lookup, reason, now, "consume")
        self._count_verification("consume", _OUTCOME_ACCEPTED)
        log_event(
            logging.INFO,
            Events.TOKEN_CONSUMED,
            token_id=lookup.token.id,
            guest_id=lookup.guest.id,
            booking_id=lookup.token.booking_id,
        )
        consumed = attrs.evolve(lookup.token, used_at=now)
        return VerifiedToken(token=consumed, guest=lookup.guest)

    def _hash_or_refuse(self, raw: object, operation: str) -> str:
        if not is_well_formed(raw):
            self._count_verification(operation, _OUTCOME_INVALID)
            raise InvalidToken()
        assert isinstance(raw, str)
        return hash_token(raw)

    def _unknown(self, operation: str) -> InvalidToken:
        """Count and log a well-formed token that matches no stored one (§9.7); the error.

        The log carries no token material: neither the raw token nor its hash.
        """
        self._count_verification(operation, _OUTCOME_INVALID)
        log_event(logging.INFO, Events.TOKEN_UNKNOWN, operation=operation)
        return InvalidToken()

    def _count_verification(self, operation: str, outcome: str) -> None:
        self._metrics.increment(
            MetricNames.VERIFICATIONS, labels={"operation": operation, "outcome": outcome}
        )

    def _refuse(
        self, lookup: TokenLookup, reason: RefusalReason, now: datetime, operation: str
    ) -> AccessDenied | TokenExpiredOrUsed:
        """Audit, count and log the refusal of a known token; return the error to raise."""
        token = lookup.token
        outcome = _OUTCOMES[reason]
        self._count_verification(operation, outcome)
        reuse = reason is RefusalReason.USED
        # §9.8: presented again within the grace (a double click, or the loser of a race whose
        # lookup predates the winner's consumption) is refused but revokes nothing.
        spared = (
            reuse
            and self.settings.revoke_on_reuse
            and (token.used_at is None or now - token.used_at < self.settings.reuse_grace)
        )
        revoke = reuse and self.settings.revoke_on_reuse and not spared
        metadata: dict[str, Any] = {
            "reason": str(reason),
            "token_id": token.id,
            "operation": operation,
        }
        if spared:
            metadata["within_grace"] = True

        def work(tx: Transaction) -> int:
            entries = [
                NewAuditEntry(
                    guest_id=token.guest_id,
                    endpoint=ENDPOINT,
                    action=AuditAction.VERIFY_TOKEN,
                    resource_id=_resource(token.booking_id),
                    success=False,
                    metadata=metadata,
                    created_at=now,
                )
            ]
            revoked = 0
            if revoke:
                revoked = tx.tokens.invalidate_live(
                    guest_id=token.guest_id,
                    booking_id=token.booking_id,
                    reason=InvalidationReason.REUSE_DETECTED,
                    now=now,
                )
                if revoked:
                    entries.append(
                        _invalidation_entry(
                            token.guest_id,
                            token.booking_id,
                            InvalidationReason.REUSE_DETECTED,
                            revoked,
                            now,
                        )
                    )
            tx.audit.add_many(entries)
            return revoked

        revoked = 0
        try:
            revoked = run_in_transaction(self._uow, work)
        except StorageError as error:
            # The refusal stands whatever happens to its audit entry: fail closed.
            log_event(
                logging.ERROR,
                Events.AUDIT_WRITE_FAILED,
                token_id=token.id,
                booking_id=token.booking_id,
                reason=str(reason),
                error_type=type(error).__name__,
                error=str(error),
            )
        level = logging.WARNING if reuse else logging.INFO
        log_event(
            level,
            Events.REUSE_DETECTED if reuse else Events.VERIFY_REFUSED,
            token_id=token.id,
            guest_id=token.guest_id,
            booking_id=token.booking_id,
            reason=str(reason),
            operation=operation,
            count=revoked if revoke else None,
        )
        if revoked:
            self._record_invalidation(InvalidationReason.REUSE_DETECTED, revoked)
        if reason is RefusalReason.BLOCKED:
            return AccessDenied()
        if reason is RefusalReason.WRONG_BOOKING:
            return wrong_booking()
        return TokenExpiredOrUsed()

    # ------------------------------------------------------------- invalidation

    def invalidate_token(self, token_id: int, reason: InvalidationReason | str) -> bool:
        """Invalidate one token (audited); False when it is unknown or already invalidated."""
        token_id = require_id(token_id, "token_id")
        parsed = parse_reason(reason)
        now = self._clock.now()
        started = time.perf_counter()

        def work(tx: Transaction) -> MagicLinkToken | None:
            before = tx.tokens.invalidate(token_id, reason=parsed, now=now)
            if before is not None:
                tx.audit.add_many(
                    [_invalidation_entry(before.guest_id, before.booking_id, parsed, 1, now)]
                )
            return before

        def landed(tx: Transaction) -> MagicLinkToken | None:
            token = tx.tokens.get(token_id)
            done = token is not None and token.invalidation_reason == parsed
            return token if done else None

        changed = run_in_transaction(self._uow, work, landed=landed) is not None
        if changed:
            self._record_invalidation(parsed, 1, elapsed_ms(started) / 1000)
        return changed

    def invalidate_tokens_by_booking_id(
        self,
        booking_id: int,
        reason: InvalidationReason | str,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """Invalidate every not-yet-invalidated token of the booking; return how many changed.

        The single entry point of lifecycle invalidation (R5). One UPDATE plus one batched
        INSERT of `INVALIDATE_TOKEN` audit entries (one per guest affected, R8), in the same
        transaction: both land or neither does. An unknown booking, or one with no live
        tokens, returns 0. `metadata` is merged into each audit entry's metadata. A transient
        `StorageError` is retried once; a failure is logged, counted and raised.
        """
        booking_id = require_id(booking_id, "booking_id")
        parsed = parse_reason(reason)
        extra = _json_object(metadata, "metadata")
        now = self._clock.now()
        started = time.perf_counter()

        def work(tx: Transaction) -> int:
            result = tx.tokens.invalidate_by_booking(booking_id, reason=parsed, now=now)
            tx.audit.add_many(
                [
                    _invalidation_entry(guest_id, booking_id, parsed, count, now, extra)
                    for guest_id, count in sorted(result.per_guest.items())
                ]
            )
            return result.count

        def landed(tx: Transaction) -> int | None:
            # The first attempt's audit entries carry its instant and reason; none at all
            # means nothing landed (or nothing was left to invalidate): running again is safe.
            counts = [
                int(entry.metadata.get("count", 0))
                for entry in tx.audit.list(booking_id=booking_id, limit=MAX_AUDIT_LIMIT)
                if entry.action == AuditAction.INVALIDATE_TOKEN
                and entry.created_at == now
                and entry.metadata.get("reason") == str(parsed)
            ]
            return sum(counts) if counts else None

        def retried(_error: StorageError) -> None:
            self._metrics.increment(
                MetricNames.INVALIDATION_RETRIES, labels={"reason": str(parsed)}
            )

        try:
            count = run_in_transaction(
                self._uow,
                work,
                landed=landed,
                retried_event=Events.INVALIDATION_RETRIED,
                on_retry=retried,
                log_fields={"booking_id": booking_id, "reason": str(parsed)},
            )
        except Exception as error:
            duration = elapsed_ms(started)
            labels = {"reason": str(parsed)}
            self._metrics.increment(
                MetricNames.INVALIDATIONS, labels={**labels, "outcome": "failed"}
            )
            self._metrics.increment(MetricNames.INVALIDATION_FAILURES, labels=labels)
            log_event(
                logging.ERROR,
                Events.INVALIDATION_FAILED,
                booking_id=booking_id,
                reason=str(parsed),
                count=0,
                duration_ms=duration,
                error_type=type(error).__name__,
                error=str(error),
            )
            raise
        duration = elapsed_ms(started)
        self._record_invalidation(parsed, count, duration / 1000)
        log_event(
            logging.INFO,
            Events.INVALIDATION_SUCCEEDED,
            booking_id=booking_id,
            reason=str(parsed),
            count=count,
            duration_ms=duration,
        )
        return count

    def _record_invalidation(
        self, reason: InvalidationReason, count: int, seconds: float | None = None
    ) -> None:
        """Count a successful invalidation. `seconds` is its own latency; None when it ran
        inside another operation's transaction (supersede, reuse revocation)."""
        labels = {"reason": str(reason)}
        self._metrics.increment(
            MetricNames.INVALIDATIONS, labels={**labels, "outcome": "succeeded"}
        )
        if seconds is not None:
            self._metrics.observe(MetricNames.INVALIDATION_LATENCY, seconds, labels=labels)
        self._metrics.observe(MetricNames.TOKENS_INVALIDATED, float(count), labels=labels)

    # ------------------------------------------------------------- guests, audit

    def block_guest(self, email: str) -> Guest:
        """Block an address (creating its guest if new): it can neither get nor use links.

        In the block's own transaction every live link of the guest is invalidated (reason
        `guest_blocked`, §9.3) and a `BLOCK_GUEST` entry is written (with its
        `INVALIDATE_TOKEN` entry when links died); logged as `guest.blocked`.
        """
        normalized = normalize_email(email)
        now = self._clock.now()
        reason = InvalidationReason.GUEST_BLOCKED

        def work(tx: Transaction) -> tuple[Guest, int]:
            guest, _ = tx.guests.get_or_create(normalized, now=now, last_request_at=None)
            blocked = tx.guests.set_blocked(guest.id, True)
            if blocked is None:  # pragma: no cover - the row was just read in this transaction
                raise StorageError("Guest vanished while being blocked")
            killed = tx.tokens.invalidate_all_live(guest_id=guest.id, reason=reason, now=now)
            entries = [_guest_admin_entry(AuditAction.BLOCK_GUEST, guest.id, killed, now)]
            if killed:
                entries.append(_invalidation_entry(guest.id, None, reason, killed, now))
            tx.audit.add_many(entries)
            return blocked, killed

        guest, killed = run_in_transaction(
            self._uow, work, landed=_guest_in_state(normalized, blocked=True)
        )
        if killed:
            self._record_invalidation(reason, killed)
        log_event(logging.INFO, Events.GUEST_BLOCKED, guest_id=guest.id, count=killed)
        return guest

    def unblock_guest(self, email: str) -> Guest | None:
        """Lift a block; the guest, or None when the address is unknown (nothing to lift).

        Revives no link (§9.3): those the block killed stay invalidated. Audited
        (`UNBLOCK_GUEST`) and logged (`guest.unblocked`) when the guest exists.
        """
        normalized = normalize_email(email)
        now = self._clock.now()

        def work(tx: Transaction) -> tuple[Guest | None, int]:
            guest = tx.guests.get_by_email(normalized)
            if guest is None:
                return None, 0
            tx.audit.add_many([_guest_admin_entry(AuditAction.UNBLOCK_GUEST, guest.id, 0, now)])
            return tx.guests.set_blocked(guest.id, False), 0

        guest, _ = run_in_transaction(
            self._uow, work, landed=_guest_in_state(normalized, blocked=False)
        )
        if guest is not None:
            log_event(logging.INFO, Events.GUEST_UNBLOCKED, guest_id=guest.id)
        return guest

    def get_guest(self, email: str) -> Guest | None:
        """The guest with this e-mail (normalized), or None."""
        normalized = normalize_email(email)
        return run_in_transaction(
            self._uow, lambda tx: tx.guests.get_by_email(normalized), readonly=True
        )

    def log_access(
        self,
        guest_id: int | None,
        endpoint: str,
        action: str,
        resource_id: str | None = None,
        success: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one entry to the guest access log. `metadata` must be a JSON object."""
        guest_id = require_optional_id(guest_id, "guest_id")
        endpoint = require_text(endpoint, "endpoint", max_length=MAX_AUDIT_TEXT)
        action = require_text(action, "action", max_length=MAX_AUDIT_TEXT)
        if resource_id is not None:
            resource_id = require_text(resource_id, "resource_id", max_length=MAX_AUDIT_TEXT)
        if not isinstance(success, bool):
            raise InvalidInput("success must be a bool")
        entry = NewAuditEntry(
            guest_id=guest_id,
            endpoint=endpoint,
            action=action,
            resource_id=resource_id,
            success=success,
            metadata=_json_object(metadata, "metadata"),
            created_at=self._clock.now(),
        )
        run_in_transaction(self._uow, lambda tx: tx.audit.add_many([entry]))

    def token_stats(self) -> TokenStats:
        """Live, expired, used and invalidated token counts, and invalidations by reason."""
        now = self._clock.now()
        return run_in_transaction(self._uow, lambda tx: tx.tokens.stats(now=now), readonly=True)

    def count_expired_tokens(self, expired_for: timedelta) -> int:
        """How many tokens expired more than `expired_for` ago (what a purge would delete)."""
        before = _before(self._clock.now(), expired_for)
        return run_in_transaction(
            self._uow, lambda tx: tx.tokens.count_expired(expired_before=before), readonly=True
        )

    def purge_expired_tokens(
        self,
        expired_for: timedelta,
        *,
        batch_size: int = 1_000,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Delete tokens expired more than `expired_for` ago; return how many were deleted.

        Works in batches of `batch_size`, one DELETE statement and one transaction each, so
        the table is never locked for long: ⌈N / batch_size⌉ statements for N tokens.
        `on_batch(deleted)` is called after each batch (for progress bars). Audit entries
        are kept.
        """
        before = _before(self._clock.now(), expired_for)
        if (
            not isinstance(batch_size, int)
            or isinstance(batch_size, bool)
            or not 1 <= batch_size <= MAX_PURGE_BATCH
        ):
            raise InvalidInput(f"batch_size must be an integer between 1 and {MAX_PURGE_BATCH}")
        total = run_in_transaction(
            self._uow, lambda tx: tx.tokens.count_expired(expired_before=before), readonly=True
        )
        deleted = 0
        for _ in range(-(-total // batch_size)):
            batch = run_in_transaction(
                self._uow,
                lambda tx: tx.tokens.purge_expired(expired_before=before, limit=batch_size),
                landed=rerun,
            )
            deleted += batch
            if on_batch is not None:
                on_batch(batch)
            if batch == 0:
                break
        return deleted

    def tokens_for_booking(self, booking_id: int) -> list[MagicLinkToken]:
        """Every token of the booking, oldest first (hashes only, never raw tokens)."""
        booking_id = require_id(booking_id, "booking_id")
        return run_in_transaction(
            self._uow, lambda tx: tx.tokens.list_by_booking(booking_id), readonly=True
        )

    def audit_trail(
        self, *, booking_id: int | None = None, guest_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Audit entries, newest first, of a booking (`resource_id == str(booking_id)`),
        of a guest, or of both."""
        booking_id = require_optional_id(booking_id, "booking_id")
        guest_id = require_optional_id(guest_id, "guest_id")
        if (
            not isinstance(limit, int)
            or isinstance(limit, bool)
            or not 1 <= limit <= MAX_AUDIT_LIMIT
        ):
            raise InvalidInput(f"limit must be an integer between 1 and {MAX_AUDIT_LIMIT}")
        return run_in_transaction(
            self._uow,
            lambda tx: tx.audit.list(booking_id=booking_id, guest_id=guest_id, limit=limit),
            readonly=True,
        )


def _token_stored(raw: str) -> Callable[[Transaction], tuple[MagicLinkToken, int] | None]:
    """The `landed` check of an issue: the token of this raw value is stored."""
    token_hash = hash_token(raw)

    def landed(tx: Transaction) -> tuple[MagicLinkToken, int] | None:
        lookup = tx.tokens.lookup(token_hash)
        return None if lookup is None else (lookup.token, 0)

    return landed


def _guest_in_state(
    normalized_email: str, *, blocked: bool
) -> Callable[[Transaction], tuple[Guest, int] | None]:
    """`landed` of block/unblock: the guest is in the state the operation sets (it is
    idempotent in effect: nothing to re-apply; the count of killed links is then unknown, 0)."""

    def landed(tx: Transaction) -> tuple[Guest, int] | None:
        guest = tx.guests.get_by_email(normalized_email)
        return (guest, 0) if guest is not None and guest.blocked is blocked else None

    return landed


def _guest_admin_entry(
    action: AuditAction, guest_id: int, killed: int, now: datetime
) -> NewAuditEntry:
    """The `BLOCK_GUEST` / `UNBLOCK_GUEST` entry of an operator's decision (R8, issue 16)."""
    return NewAuditEntry(
        guest_id=guest_id,
        endpoint=ENDPOINT,
        action=action,
        resource_id=None,
        success=True,
        metadata={"invalidated": killed},
        created_at=now,
    )


def _open_booking_of(
    tx: Transaction, booking_id: int, normalized_email: str, *, guest_path: bool = False
) -> Booking:
    """The booking if it exists, belongs to this e-mail and is open; else the matching error.

    On the guest path (`guest_path`) an unknown booking and a booking of another e-mail give
    the same `AccessDenied`, after the same one statement (§9.5); the system paths keep
    `BookingNotFound`. The row is locked until the transaction ends, so links of one booking
    are issued one at a time and never concurrently with a change of the booking.
    """
    booking = tx.bookings.get(booking_id, for_update=True)
    if booking is None:
        if guest_path:
            raise AccessDenied()
        raise BookingNotFound()
    if booking.guest_email != normalized_email:
        raise AccessDenied()
    if booking.is_closed:
        raise BookingClosed()
    return booking


def _before(now: datetime, expired_for: object) -> datetime:
    """`now - expired_for`, refusing a duration that is not one or reaches before year 1."""
    try:
        return now - require_duration(expired_for, "expired_for")
    except OverflowError as error:
        raise InvalidInput("expired_for is out of range") from error


def _resource(booking_id: int | None) -> str | None:
    return None if booking_id is None else str(booking_id)


def _consume_entry(
    token: MagicLinkToken, booking_id: int | None, now: datetime, action: str | None = None
) -> NewAuditEntry:
    """The `CONSUME_TOKEN` entry of a successful consumption (§9.7), by `consume_token` and
    by a link action (§8.1, which names its `action`): success, the token id in metadata,
    the booking acted on as resource."""
    metadata: dict[str, Any] = {"token_id": token.id}
    if action is not None:
        metadata["action"] = action
    return NewAuditEntry(
        guest_id=token.guest_id,
        endpoint=ENDPOINT,
        action=AuditAction.CONSUME_TOKEN,
        resource_id=_resource(booking_id),
        success=True,
        metadata=metadata,
        created_at=now,
    )


def _invalidation_entry(
    guest_id: int,
    booking_id: int | None,
    reason: InvalidationReason,
    count: int,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
) -> NewAuditEntry:
    return NewAuditEntry(
        guest_id=guest_id,
        endpoint=ENDPOINT,
        action=AuditAction.INVALIDATE_TOKEN,
        resource_id=_resource(booking_id),
        success=True,
        metadata={**(extra or {}), "reason": str(reason), "count": count},
        created_at=now,
    )


def _json_object(value: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """A copy of `value` if it is a JSON-serialisable mapping with string keys."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInput(f"{name} must be a mapping with string keys")
    try:
        # ensure_ascii=False + encode: lone surrogates fail here rather than in a driver.
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidInput(f"{name} must be JSON-serialisable") from error
    if "\\u0000" in text:  # PostgreSQL's JSONB cannot store NUL characters
        raise InvalidInput(f"{name} must not contain NUL characters")
    return dict(value)
