"""`OutboxWorker`: delivers stored mail intents (§11.2), minting each link at delivery time."""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Final

import attrs

from magiclink._bootstrap import Services
from magiclink.domain._enums import InvalidationReason
from magiclink.domain._errors import AccessDenied, BookingClosed, BookingNotFound, MagicLinkError
from magiclink.domain._observability import log_event, redact
from magiclink.domain._records import Booking, LinkMessage, MagicLinkToken
from magiclink.ports._clock import Clock
from magiclink.ports._notifier import Notifier
from magiclink.ports._outbox import Outbox, OutboxMessage, OutboxMetricNames, OutboxState
from magiclink.ports._unit_of_work import Transaction

DEAD_LETTER_ACTION: Final = "OUTBOX_DEAD_LETTER"
_MAX_ERROR: Final = 255


@attrs.frozen
class DeliveryReport:
    """What one `deliver_due` call did."""

    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    skipped: int = 0


class _Stale(MagicLinkError):
    """The intent no longer matches its booking (moved again): nothing to mail."""


class OutboxWorker:
    """Claims due outbox messages and delivers each one (see `deliver_due`).

    Several workers (threads or processes) may run at once: a claim is exclusive until its
    lease lapses. Backoff after failed attempt n: `min(max_delay, base_delay * 2**(n-1))`
    times a random factor in [0.5, 1) (jitter), so failing messages spread out.
    """

    def __init__(
        self,
        services: Services,
        notifier: Notifier,
        *,
        outbox: Outbox,
        max_attempts: int = 8,
        base_delay: timedelta = timedelta(seconds=30),
        max_delay: timedelta = timedelta(hours=1),
        lease: timedelta = timedelta(minutes=5),
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._guests = services.guests
        self._notifier = notifier
        self._outbox = outbox
        self._max_attempts = max_attempts
        self._base, self._max, self._lease = base_delay, max_delay, lease
        self._clock = clock if clock is not None else services.guests.clock
        self._rng = rng if rng is not None else random.Random()
        self._metrics = services.guests.metrics

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Claim up to `limit` due messages and deliver each; return what happened.

        Per message: kill the previous attempt's link (reason `delivery_failed`) if any, mint
        a fresh link on the system path (recorded on the message in the same transaction),
        send, mark delivered. On a failed send the new link dies too, and the message is
        retried later or, after `max_attempts` or a permanent refusal, dead-lettered (ERROR
        log, metric, audit). Never raises for one message's failure.
        """
        counts = {"delivered": 0, "retried": 0, "dead_lettered": 0, "skipped": 0}
        for message in self._outbox.claim_due(
            now=self._clock.now(), limit=limit, lease=self._lease
        ):
            outcome = self._deliver(message)
            counts[outcome] += 1
            self._metrics.increment(
                OutboxMetricNames.DELIVERIES, labels={"outcome": outcome, "kind": message.kind}
            )
        return DeliveryReport(**counts)

    def _deliver(self, message: OutboxMessage) -> str:
        if message.token_id is not None:  # an earlier attempt died after minting
            self._guests.invalidate_token(message.token_id, InvalidationReason.DELIVERY_FAILED)
        try:
            token, booking = self._mint(message)
        except (_Stale, BookingClosed, BookingNotFound, AccessDenied) as error:
            return self._finish(
                message, OutboxState.SKIPPED, f"intent obsolete: {type(error).__name__}"
            )
        except MagicLinkError as error:
            return self._failed(message, None, error, transient=True)
        try:
            self._notifier.send(
                LinkMessage(
                    to=message.guest_email,
                    url=self._guests.settings.link_url(token[0]),
                    booking_id=message.booking_id,
                    kind=message.kind,
                    starts_at=booking.start_time,
                    valid_for=self._guests.settings.token_ttl,
                )
            )
        except Exception as error:
            return self._failed(
                message, token[1], error, transient=bool(getattr(error, "transient", True))
            )
        return self._finish(message, OutboxState.DELIVERED, None)

    def _mint(self, message: OutboxMessage) -> tuple[tuple[str, int], Booking]:
        seen: list[Booking] = []

        def within(tx: Transaction, token: MagicLinkToken, booking: Booking) -> None:
            if booking.revision != message.booking_revision:
                raise _Stale()
            self._outbox.record_link(tx, message.id, token.id)
            seen.append(booking)

        issued = self._guests.issue_booking_link(
            message.guest_email, message.booking_id, within=within
        )
        return (issued.raw, issued.token_id), seen[-1]

    def _failed(
        self, message: OutboxMessage, token_id: int | None, error: Exception, *, transient: bool
    ) -> str:
        if token_id is not None:
            self._guests.invalidate_token(token_id, InvalidationReason.DELIVERY_FAILED)
        text = redact(f"{type(error).__name__}: {error}")[:_MAX_ERROR]
        if transient and message.attempts < self._max_attempts:
            at = self._clock.now() + self.backoff(message.attempts)
            self._outbox.finish(
                message.id,
                attempt=message.attempts,
                state=OutboxState.PENDING,
                now=self._clock.now(),
                next_attempt_at=at,
                error=text,
            )
            return "retried"
        self._finish(message, OutboxState.DEAD, text)
        self._metrics.increment(OutboxMetricNames.DEAD_LETTERS, labels={"kind": message.kind})
        log_event(
            logging.ERROR,
            "outbox.dead_lettered",
            booking_id=message.booking_id,
            outbox_id=message.id,
            count=message.attempts,
            error=text,
        )
        self._guests.log_access(
            None,
            "magiclink.outbox",
            DEAD_LETTER_ACTION,
            resource_id=str(message.booking_id),
            success=False,
            metadata={"outbox_id": message.id, "attempts": message.attempts, "error": text},
        )
        return "dead_lettered"

    def _finish(self, message: OutboxMessage, state: OutboxState, error: str | None) -> str:
        self._outbox.finish(
            message.id, attempt=message.attempts, state=state, now=self._clock.now(), error=error
        )
        return {OutboxState.DELIVERED: "delivered", OutboxState.SKIPPED: "skipped"}.get(
            state, "dead_lettered"
        )

    def backoff(self, attempt: int) -> timedelta:
        """The delay before the attempt after failed attempt `attempt` (capped, jittered)."""
        capped = min(self._max, self._base * (1 << max(0, min(attempt - 1, 30))))
        return capped * (0.5 + self._rng.random() / 2)


__all__ = ["DEAD_LETTER_ACTION", "DeliveryReport", "OutboxWorker"]
