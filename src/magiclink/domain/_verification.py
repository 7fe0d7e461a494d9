"""Checking links: verify (read-only, scanner-safe), consume (one atomic winner), and the
audited refusal of a known link, with reuse detection (§5.7, §9.8)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from magiclink.domain import _audit
from magiclink.domain._context import GuestContext
from magiclink.domain._enums import InvalidationReason, RefusalReason
from magiclink.domain._errors import AccessDenied, InvalidToken, StorageError, TokenExpiredOrUsed
from magiclink.domain._observability import Events
from magiclink.domain._policy import hash_token, is_well_formed, refusal_reason
from magiclink.domain._records import MagicLinkToken, TokenLookup, VerifiedToken
from magiclink.domain._replace import replacer
from magiclink.domain._scope import require_scope, scope_refusal, wrong_booking
from magiclink.domain._transactions import Operation, read, run
from magiclink.ports._unit_of_work import Transaction

_Checked = tuple[TokenLookup | None, RefusalReason | None]
_consumed: Final = replacer(MagicLinkToken, "used_at")


class Verification:
    """Verifies and consumes links; refuses known ones with an audit entry."""

    def __init__(self, context: GuestContext) -> None:
        self._context = context

    def verify(self, raw: str, booking_id: int | None) -> VerifiedToken:
        """See `GuestService.verify_token`."""
        token_hash = self.hash_or_refuse(raw, "verify")
        scope = require_scope(booking_id)
        now = self._context.clock.now()

        def work(tx: Transaction) -> _Checked:
            lookup = tx.tokens.lookup(token_hash)
            if lookup is None:
                return None, None
            reason = refusal_reason(lookup, now)
            return lookup, reason if reason is not None else scope_refusal(tx, lookup, scope)

        lookup = self._accepted(run(self._context.uow, read(work)), now, "verify")
        # §9.7: a verify stays read-only (scanner-safe); its success is a log event only.
        self._context.instruments.accepted(lookup, "verify", Events.TOKEN_VERIFIED)
        return VerifiedToken(token=lookup.token, guest=lookup.guest)

    def consume(self, raw: str, booking_id: int | None) -> VerifiedToken:
        """See `GuestService.consume_token`."""
        token_hash = self.hash_or_refuse(raw, "consume")
        scope = require_scope(booking_id)
        now = self._context.clock.now()
        operation_id = _audit.new_operation_id()
        # §9.7: the success is audited in the consume's own transaction (in the same
        # statement where the adapter can); the resource is the scope, else the token's booking.
        entry = _audit.consumption(scope, now, operation_id=operation_id)

        def work(tx: Transaction) -> _Checked:
            consumed = tx.consume_if_accepted(token_hash, now=now, booking_id=scope, entry=entry)
            if consumed is not None:  # a good link, in one statement where the adapter can
                return consumed, None
            lookup = tx.tokens.lookup(token_hash)
            if lookup is None:
                return None, None
            reason = refusal_reason(lookup, now) or scope_refusal(tx, lookup, scope)
            if reason is None:
                token = lookup.token
                if not tx.consume_with_audit(token.id, now=now, entry=entry.of_token(token)):
                    reason = RefusalReason.USED  # a concurrent caller consumed it first
            return lookup, reason

        def landed(tx: Transaction) -> _Checked | None:
            """Exact: this call's `CONSUME_TOKEN` entry is stored (by its operation id)."""
            if not tx.audit.by_operation(operation_id):
                return None
            lookup = tx.tokens.lookup(token_hash)
            return None if lookup is None else (lookup, None)

        checked = run(self._context.uow, Operation(work, landed=landed, one_write=True))
        lookup = self._accepted(checked, now, "consume")
        self._context.instruments.accepted(lookup, "consume", Events.TOKEN_CONSUMED)
        return VerifiedToken(token=_consumed(lookup.token, now), guest=lookup.guest)

    def _accepted(self, checked: _Checked, now: datetime, operation: str) -> TokenLookup:
        """The lookup of an accepted link; for an unknown or refused one, the error raised."""
        lookup, reason = checked
        if lookup is None:
            raise self.unknown(operation)
        if reason is not None:
            raise self.refuse(lookup, reason, now, operation)
        return lookup

    def hash_or_refuse(self, raw: object, operation: str) -> str:
        """The hash of a well-formed raw token; else counted, and `InvalidToken`."""
        if not is_well_formed(raw):
            self._context.instruments.malformed(operation)
            raise InvalidToken()
        assert isinstance(raw, str)
        return hash_token(raw)

    def unknown(self, operation: str) -> InvalidToken:
        """Count and log a well-formed token that matches no stored one (§9.7); the error."""
        self._context.instruments.unknown(operation)
        return InvalidToken()

    def refuse(
        self, lookup: TokenLookup, reason: RefusalReason, now: datetime, operation: str
    ) -> AccessDenied | TokenExpiredOrUsed:
        """Audit, count and log the refusal of a known token; return the error to raise.

        A reuse (`USED`) with `revoke_on_reuse` revokes the pair's live links in the audit's
        transaction, unless it comes within `reuse_grace` of the consumption (a double
        click, or a race's loser, §9.8). The refusal stands even if its audit write fails.
        """
        token = lookup.token
        settings = self._context.settings
        reuse = reason is RefusalReason.USED and settings.revoke_on_reuse
        spared = reuse and (token.used_at is None or now - token.used_at < settings.reuse_grace)
        entry = _audit.verify_refused(token, reason, operation, now, within_grace=spared)
        revoke = reuse and not spared

        def work(tx: Transaction) -> int:
            entries = [entry]
            revoked = 0
            if revoke:
                revoked = _revoke_pair(tx, token, now)
                if revoked:
                    entries.append(
                        _audit.tokens_invalidated(
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
            revoked = run(self._context.uow, Operation(work))
        except StorageError as error:  # fail closed: the refusal stands
            self._context.instruments.audit_write_failed(token, reason, error)
        self._context.instruments.refused(token, reason, operation, revoked if revoke else None)
        return _error_for(reason)


def _revoke_pair(tx: Transaction, token: MagicLinkToken, now: datetime) -> int:
    """Invalidate the live links of the token's guest and booking: a reuse was detected."""
    return tx.tokens.invalidate_live(
        guest_id=token.guest_id,
        booking_id=token.booking_id,
        reason=InvalidationReason.REUSE_DETECTED,
        now=now,
    )


def _error_for(reason: RefusalReason) -> AccessDenied | TokenExpiredOrUsed:
    if reason is RefusalReason.BLOCKED:
        return AccessDenied()
    if reason is RefusalReason.WRONG_BOOKING:
        return wrong_booking()
    return TokenExpiredOrUsed()


__all__ = ["Verification"]
