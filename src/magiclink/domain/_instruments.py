"""`Instruments`: each outcome of a guest-link operation as one call, its metrics and its log
event together (issue 12.1), so no call site pairs a counter with a log line by hand."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from magiclink.domain._enums import InvalidationReason, IssuePath, RefusalReason
from magiclink.domain._observability import Events, log_event
from magiclink.domain._records import Guest, MagicLinkToken, TokenLookup
from magiclink.ports._metrics import MetricNames, Metrics

ACCEPTED: Final = "accepted"
INVALID: Final = "invalid"
# Presenting a consumed link again is the signature of a forwarded or stolen link (§5.7).
_OUTCOMES: Final[Mapping[RefusalReason, str]] = {
    reason: "reuse" if reason is RefusalReason.USED else str(reason) for reason in RefusalReason
}


class Instruments:
    """The metrics and log events of the guest-link operations, one method per outcome."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    # ------------------------------------------------------------------ issuing

    def issued(self, token: MagicLinkToken, path: IssuePath, superseded: int) -> None:
        """A link was issued on `path`, superseding `superseded` earlier ones (§5.8)."""
        self.metrics.increment(MetricNames.TOKENS_ISSUED, labels={"path": str(path)})
        if superseded:
            self.invalidated(InvalidationReason.SUPERSEDED, superseded)
        log_event(
            logging.INFO,
            Events.TOKEN_ISSUED,
            token_id=token.id,
            guest_id=token.guest_id,
            booking_id=token.booking_id,
            path=str(path),
        )

    # ------------------------------------------------------------- verification

    def malformed(self, operation: str) -> None:
        """A presented token that cannot be one (counted, never logged: it may be a secret)."""
        self._verification(operation, INVALID)

    def unknown(self, operation: str) -> None:
        """A well-formed token that matches no stored one (§9.7); no token material logged."""
        self._verification(operation, INVALID)
        log_event(logging.INFO, Events.TOKEN_UNKNOWN, operation=operation)

    def accepted(
        self,
        lookup: TokenLookup,
        operation: str,
        event: str,
        *,
        reason: InvalidationReason | None = None,
        invalidated: int = 0,
    ) -> None:
        """A link was accepted by `operation`: verified, consumed, or acted with (then the
        booking's `invalidated` other links died for `reason`)."""
        self._verification(operation, ACCEPTED)
        if reason is not None and invalidated:
            self.invalidated(reason, invalidated)
        fields: dict[str, object] = {
            "token_id": lookup.token.id,
            "guest_id": lookup.guest.id,
            "booking_id": lookup.token.booking_id,
        }
        if reason is not None:
            fields["reason"] = str(reason)
        log_event(logging.INFO, event, **fields)

    def refused(
        self, token: MagicLinkToken, reason: RefusalReason, operation: str, revoked: int | None
    ) -> None:
        """A known link was refused for `reason`; `revoked` is how many links a reuse
        revoked (None when the refusal revokes nothing)."""
        self._verification(operation, _OUTCOMES[reason])
        reuse = reason is RefusalReason.USED
        log_event(
            logging.WARNING if reuse else logging.INFO,
            Events.REUSE_DETECTED if reuse else Events.VERIFY_REFUSED,
            token_id=token.id,
            guest_id=token.guest_id,
            booking_id=token.booking_id,
            reason=str(reason),
            operation=operation,
            count=revoked,
        )
        if revoked:
            self.invalidated(InvalidationReason.REUSE_DETECTED, revoked)

    def audit_write_failed(
        self, token: MagicLinkToken, reason: RefusalReason, error: Exception
    ) -> None:
        """The audit entry of a refusal could not be written; the refusal stands."""
        log_event(
            logging.ERROR,
            Events.AUDIT_WRITE_FAILED,
            token_id=token.id,
            booking_id=token.booking_id,
            reason=str(reason),
            error_type=type(error).__name__,
            error=str(error),
        )

    def _verification(self, operation: str, outcome: str) -> None:
        self.metrics.increment(
            MetricNames.VERIFICATIONS, labels={"operation": operation, "outcome": outcome}
        )

    # ------------------------------------------------------------- invalidation

    def invalidated(
        self, reason: InvalidationReason, count: int, seconds: float | None = None
    ) -> None:
        """`count` links died for `reason`. `seconds` is the invalidation's own latency; None
        when it ran inside another operation's transaction (supersede, reuse, an action)."""
        labels = {"reason": str(reason)}
        self.metrics.increment(MetricNames.INVALIDATIONS, labels={**labels, "outcome": "succeeded"})
        if seconds is not None:
            self.metrics.observe(MetricNames.INVALIDATION_LATENCY, seconds, labels=labels)
        self.metrics.observe(MetricNames.TOKENS_INVALIDATED, float(count), labels=labels)

    def batch_invalidated(
        self, booking_id: int, reason: InvalidationReason, count: int, duration_ms: float
    ) -> None:
        """A booking's batch invalidation (R5) succeeded."""
        self.invalidated(reason, count, duration_ms / 1000)
        log_event(
            logging.INFO,
            Events.INVALIDATION_SUCCEEDED,
            booking_id=booking_id,
            reason=str(reason),
            count=count,
            duration_ms=duration_ms,
        )

    def batch_invalidation_retried(self, reason: InvalidationReason) -> None:
        """A booking's batch invalidation is tried again after a transient failure (R9.4)."""
        self.metrics.increment(MetricNames.INVALIDATION_RETRIES, labels={"reason": str(reason)})

    def batch_invalidation_failed(
        self, booking_id: int, reason: InvalidationReason, duration_ms: float, error: Exception
    ) -> None:
        """A booking's batch invalidation failed for good (R9.5)."""
        labels = {"reason": str(reason)}
        self.metrics.increment(MetricNames.INVALIDATIONS, labels={**labels, "outcome": "failed"})
        self.metrics.increment(MetricNames.INVALIDATION_FAILURES, labels=labels)
        log_event(
            logging.ERROR,
            Events.INVALIDATION_FAILED,
            booking_id=booking_id,
            reason=str(reason),
            count=0,
            duration_ms=duration_ms,
            error_type=type(error).__name__,
            error=str(error),
        )

    # ------------------------------------------------------------------- guests

    def guest_blocked(self, guest: Guest, killed: int) -> None:
        """A guest was blocked and `killed` of its live links died (§9.3)."""
        if killed:
            self.invalidated(InvalidationReason.GUEST_BLOCKED, killed)
        log_event(logging.INFO, Events.GUEST_BLOCKED, guest_id=guest.id, count=killed)

    def guest_unblocked(self, guest: Guest) -> None:
        """A guest's block was lifted."""
        log_event(logging.INFO, Events.GUEST_UNBLOCKED, guest_id=guest.id)


__all__ = ["ACCEPTED", "INVALID", "Instruments"]
