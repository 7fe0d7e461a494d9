"""Guest actions through a link (SPEC §8.1): check, act and kill in one transaction.

One mechanism, `run_link_action`: in ONE transaction it looks the token up, applies R7 and the
booking scope (§9.1), locks the booking and checks the link again against the locked row (so
of two links of one booking racing to act, the second sees the first's event, §8.3),
consumes the token with the conditional write that only a live token satisfies (so of racing
callers of one link exactly one goes on), runs the action, advances the booking's link
generation (every other link dead from this commit on, §8.4), invalidates the booking's other
links and writes the audit entries (`CONSUME_TOKEN` and the `INVALIDATE_TOKEN` entries, R8). A
refused action raises and rolls everything back, so the link stays usable (§8.2); a refused
link writes only its `VERIFY_TOKEN` entry, afterwards, as `consume_token` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar, cast

import attrs

from magiclink.domain import _audit
from magiclink.domain._enums import InvalidationReason, RefusalReason
from magiclink.domain._errors import InvalidInput
from magiclink.domain._link_context import LinkActionContext
from magiclink.domain._observability import Events
from magiclink.domain._policy import booking_refusal, refusal_reason
from magiclink.domain._records import Booking, Guest, MagicLinkToken, TokenLookup
from magiclink.domain._replace import replacer
from magiclink.domain._scope import require_scope, scope_refusal
from magiclink.domain._transactions import Operation, run
from magiclink.ports._unit_of_work import Transaction

T = TypeVar("T")

_OPERATION: Final = "consume"  # a link action consumes its link (metrics label)

_with_operation: Final = replacer(Booking, "operation_id")
_with_generation: Final = replacer(Booking, "link_generation")


@attrs.frozen
class LinkGrant:
    """What an action may use: the consumed token, its guest, and the booking (locked, open,
    stamped with the action's operation id for any write of it)."""

    token: MagicLinkToken
    guest: Guest
    booking: Booking
    now: datetime

    @property
    def profile_id(self) -> str:
        """The student profile id a link action records: the guest, by id."""
        return f"guest:{self.guest.id}"


@attrs.frozen
class _Outcome:
    lookup: TokenLookup | None
    refusal: RefusalReason | None = None
    result: Any = None
    invalidated: int = 0


@attrs.frozen
class _Action:
    """One call's action: what it does, what it kills its booking's links for, its labels."""

    act: Callable[[Transaction, Any], Any]
    reason: InvalidationReason
    name: str
    extra: Mapping[str, Any]
    now: datetime
    operation_id: str
    acted: list[_Outcome] = attrs.field(factory=list)
    """The outcome of each attempt that ran the action (a retried one runs it again)."""

    def land(self, tx: Transaction, lookup: TokenLookup, booking: Booking, target: int) -> _Outcome:
        """The consumed link's action, its booking's links killed, and the audit (§8.1)."""
        now = self.now
        # The booking an action writes carries this call's operation id (issue 12.2).
        granted = _with_operation(revoke_links(tx, booking), self.operation_id)
        grant = LinkGrant(lookup.token, lookup.guest, granted, now)
        result = self.act(tx, grant)
        invalidated = tx.tokens.invalidate_by_booking(target, reason=self.reason, now=now)
        entries = [
            _audit.token_consumed(
                lookup.token, target, now, self.name, operation_id=self.operation_id
            )
        ]
        entries += [
            _audit.tokens_invalidated(
                guest_id,
                target,
                self.reason,
                count,
                now,
                self.extra,
                operation_id=self.operation_id,
            )
            for guest_id, count in sorted(invalidated.per_guest.items())
        ]
        tx.audit.add_many(entries)
        self.acted.append(_Outcome(lookup, None, result, invalidated.count))
        return self.acted[-1]

    def landed(self, tx: Transaction) -> _Outcome | None:
        """After an ambiguous commit, exact: the action landed iff this call's
        `CONSUME_TOKEN` entry is stored (by its operation id), for it committed with the
        whole transaction, the action included."""
        ours = self.acted and tx.audit.by_operation(self.operation_id)
        return self.acted[-1] if ours else None


def revoke_links(tx: Transaction, booking: Booking) -> Booking:
    """Kill every link of the booking issued so far, in this event's transaction (§8.4).

    Advances the booking's link generation; `booking` must have been read under this
    transaction's lock (`for_update`), so the returned booking is exactly what is stored.
    """
    tx.bookings.revoke_links(booking.id)
    return _with_generation(booking, booking.link_generation + 1)


def run_link_action(
    links: LinkActionContext,
    raw: object,
    booking_id: object,
    act: Callable[[Transaction, LinkGrant], T],
    *,
    reason: InvalidationReason,
    action: str,
    metadata: Mapping[str, Any] | None = None,
) -> T:
    """Run `act` under the authority of the link `raw` (§8.1); see the module docstring.

    Raises `InvalidToken`, `InvalidInput` (an inbox link without `booking_id`),
    `AccessDenied`, `TokenExpiredOrUsed`, or whatever `act` raises (then nothing is written).
    """
    token_hash = links.verification.hash_or_refuse(raw, _OPERATION)
    scope = require_scope(booking_id)
    now = links.clock.now()
    extra = {**(metadata or {}), "event": action}
    plan = _Action(act, reason, action, extra, now, _audit.new_operation_id())

    def work(tx: Transaction) -> _Outcome:
        lookup = tx.tokens.lookup(token_hash)
        if lookup is None:
            return _Outcome(None)
        target = scope if scope is not None else lookup.token.booking_id
        if target is None:
            raise InvalidInput("booking_id is required with an inbox link")
        refusal = refusal_reason(lookup, now) or scope_refusal(tx, lookup, scope)
        if refusal is not None:
            return _Outcome(lookup, refusal)
        booking = tx.bookings.get(target, for_update=True)
        refusal = _locked_refusal(lookup.token, booking, now)
        if refusal is None and not tx.tokens.consume(lookup.token.id, now=now):
            refusal = RefusalReason.USED  # a concurrent action consumed it first
        if refusal is not None or booking is None:
            return _Outcome(lookup, refusal or RefusalReason.BOOKING_MISSING)
        return plan.land(tx, lookup, booking, target)

    outcome = run(links.uow, Operation(work, landed=plan.landed))
    return cast(T, _answer(links, outcome, now, reason))


def _answer(
    links: LinkActionContext, outcome: _Outcome, now: datetime, reason: InvalidationReason
) -> Any:
    """The action's result; or, for an unknown or refused link, the error raised."""
    if outcome.lookup is None:
        raise links.verification.unknown(_OPERATION)
    if outcome.refusal is not None:
        raise links.verification.refuse(outcome.lookup, outcome.refusal, now, _OPERATION)
    links.instruments.accepted(
        outcome.lookup,
        _OPERATION,
        Events.TOKEN_CONSUMED,
        reason=reason,
        invalidated=outcome.invalidated,
    )
    return outcome.result


def _locked_refusal(
    token: MagicLinkToken, booking: Booking | None, now: datetime
) -> RefusalReason | None:
    """The link checked again against its booking as locked by this transaction.

    A booking-bound link goes through the whole liveness rule on the locked row; an inbox
    link (already in scope, §9.1) needs its booking to still exist and be open.
    """
    if token.booking_id is not None:
        return booking_refusal(token, booking, now)
    if booking is None:
        return RefusalReason.WRONG_BOOKING
    return RefusalReason.BOOKING_CLOSED if booking.is_closed else None


__all__ = ["LinkGrant", "revoke_links", "run_link_action"]
