"""Concurrency contract: the conditional writes that must have exactly one winner.

Each racer does what a service does: one short transaction on the shared unit of work, run
by `run_in_transaction` (so a transient `StorageError` is retried once, as in production).
All racers of a round are released together by a `threading.Barrier`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Final, TypeVar

from magiclink.domain._enums import InvalidationReason
from magiclink.domain._records import Guest, InvalidationResult, MagicLinkToken
from magiclink.domain._transactions import run_in_transaction
from magiclink.ports._unit_of_work import Transaction, UnitOfWork
from magiclink.testing.contract_support import JOIN_SECONDS, MICRO, T0, ContractBase, new_email

T = TypeVar("T")

THREADS: Final = 16
"""Racers per round."""

ROUNDS: Final = 5
"""Rounds per race (each on fresh records)."""


def released_together(
    call: Callable[[], T], *, threads: int = THREADS
) -> tuple[list[T], list[BaseException]]:
    """Run `call` in `threads` threads released together by a barrier; what the calls
    returned and what they raised (each list in finishing order). Fails the test if a
    thread does not finish within `JOIN_SECONDS`."""
    barrier = threading.Barrier(threads)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def racer() -> None:
        try:
            barrier.wait(JOIN_SECONDS)
            result = call()
        except BaseException as error:
            with lock:
                errors.append(error)
        else:
            with lock:
                results.append(result)

    workers = [
        threading.Thread(target=racer, name=f"magiclink-racer-{i}", daemon=True)
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(JOIN_SECONDS)
    assert not any(worker.is_alive() for worker in workers), "a racer never finished"
    return results, errors


def race(uow: UnitOfWork, work: Callable[[Transaction], T], *, threads: int = THREADS) -> list[T]:
    """Run `work` in `threads` threads released together, each in its own transaction.

    Returns every racer's result; fails the test if any racer raised or did not finish.
    """
    results, errors = released_together(lambda: run_in_transaction(uow, work), threads=threads)
    assert errors == [], f"racers raised: {errors!r}"
    assert len(results) == threads
    return results


class ConcurrencyContract(ContractBase):
    """Racing writers: exactly one winner, whatever the interleaving (§5.1, R8, §4)."""

    def test_racing_consumers_exactly_one_wins_5_1(self, uow: UnitOfWork) -> None:
        """§5.1: N threads consume one live token at once; exactly one gets True."""
        for _ in range(ROUNDS):
            self._consumers_round(uow)

    def _consumers_round(self, uow: UnitOfWork) -> None:
        def setup(tx: Transaction) -> MagicLinkToken:
            guest = self.add_guest(tx)
            booking = self.add_booking(tx, guest_email=guest.normalized_email)
            return self.add_token(tx, guest, booking)

        token = self.run(uow, setup)
        outcomes = race(uow, lambda tx: tx.tokens.consume(token.id, now=T0 + MICRO))
        assert sorted(outcomes) == [False] * (THREADS - 1) + [True]
        stored = self.read(uow, lambda tx: tx.tokens.get(token.id))
        assert stored is not None
        assert stored.used_at == T0 + MICRO

    def test_racing_get_or_create_one_guest(self, uow: UnitOfWork) -> None:
        """N threads create the same new e-mail: one guest id for all, exactly one created."""
        for _ in range(ROUNDS):
            self._get_or_create_round(uow)

    def _get_or_create_round(self, uow: UnitOfWork) -> None:
        email = new_email()
        outcomes = race(
            uow, lambda tx: tx.guests.get_or_create(email, now=T0, last_request_at=None)
        )
        ids = {guest.id for guest, _ in outcomes}
        assert len(ids) == 1
        assert sorted(created for _, created in outcomes) == [False] * (THREADS - 1) + [True]
        assert all(guest.normalized_email == email for guest, _ in outcomes)
        stored = self.read(uow, lambda tx: tx.guests.get_by_email(email))
        assert stored is not None
        assert {stored.id} == ids

    def test_racing_request_slot_claims_once(self, uow: UnitOfWork) -> None:
        """§4 `RateLimited`: of N simultaneous requests exactly one claims the slot."""
        for _ in range(ROUNDS):
            self._request_slot_round(uow)

    def _request_slot_round(self, uow: UnitOfWork) -> None:
        guest: Guest = self.run(
            uow, lambda tx: self.add_guest(tx, last_request_at=T0 - timedelta(minutes=5))
        )
        outcomes = race(
            uow,
            lambda tx: tx.guests.claim_request_slot(
                guest.id, now=T0, not_after=T0 - timedelta(minutes=1)
            ),
        )
        assert sorted(outcomes) == [False] * (THREADS - 1) + [True]
        stored = self.read(uow, lambda tx: tx.guests.get(guest.id))
        assert stored is not None
        assert stored.last_request_at == T0

    def test_racing_batch_invalidations_count_each_token_once_r8_3(self, uow: UnitOfWork) -> None:
        """R8.3: racing invalidations of one booking report each token exactly once, so the
        audit counts add up to the number of tokens."""
        for _ in range(ROUNDS):
            self._batch_invalidation_round(uow)

    def _batch_invalidation_round(self, uow: UnitOfWork) -> None:
        def setup(tx: Transaction) -> tuple[int, dict[int, int]]:
            alice, bob = self.add_guest(tx), self.add_guest(tx)
            booking = self.add_booking(tx, guest_email=alice.normalized_email)
            for guest in (alice, alice, bob):
                self.add_token(tx, guest, booking)
            return booking.id, {alice.id: 2, bob.id: 1}

        booking_id, expected = self.run(uow, setup)
        outcomes: list[InvalidationResult] = race(
            uow,
            lambda tx: tx.tokens.invalidate_by_booking(
                booking_id, reason=InvalidationReason.BOOKING_CANCELLED, now=T0
            ),
        )
        totals: dict[int, int] = {}
        for result in outcomes:
            for guest_id, count in result.per_guest.items():
                totals[guest_id] = totals.get(guest_id, 0) + count
        assert totals == expected

    def test_racing_single_invalidations_one_winner(self, uow: UnitOfWork) -> None:
        """Of N threads invalidating one token, exactly one gets the token back."""
        for _ in range(ROUNDS):
            self._single_invalidation_round(uow)

    def _single_invalidation_round(self, uow: UnitOfWork) -> None:
        token = self.run(uow, lambda tx: self.add_token(tx, self.add_guest(tx)))
        outcomes = race(
            uow,
            lambda tx: tx.tokens.invalidate(
                token.id, reason=InvalidationReason.MANUAL_REVOCATION, now=T0
            ),
        )
        assert [o for o in outcomes if o is not None] == [token]


__all__ = ["ROUNDS", "THREADS", "ConcurrencyContract", "race", "released_together"]
