"""In-memory cost independent of history (issue 15.2, R10.5 in spirit).

    .venv/bin/python bench/history.py            # also run by `make bench`
    .venv/bin/python bench/history.py --quick

For one guest with no history and one with 20,000 earlier entries (tokens of that guest and
of its booking, and their audit entries), time `issue_booking_link` and
`invalidate_tokens_by_booking_id` of a one-token booking on the in-memory adapter. Each round
times a batch of calls on a fresh booking of that guest; the ratio is the median of the old
guest over the median of the fresh one, in the same run. Goal: <= 1.5x. Before the index
appends became O(1) amortised (lists appended in place, undone on rollback), every append
copied the whole index tuple, so both operations grew with the guest's history.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from datetime import UTC, datetime, timedelta

from magiclink import InvalidationReason, Settings, build_services
from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork, ManualClock

HISTORY = 20_000
GOAL = 1.5
T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Guest:
    """One guest's services over a storage holding `history` earlier entries of theirs."""

    email = "old@example.com"

    def __init__(self, history: int) -> None:
        self.services = build_services(
            InMemoryUnitOfWork(),
            notifier=InMemoryNotifier(),
            clock=ManualClock(T0),
            settings=Settings(token_ttl=timedelta(hours=1)),
        )
        booking_id = self.book()
        for _ in range(history // 2):  # each issue stores a token and a CREATE_TOKEN entry
            self.issue(booking_id)

    def book(self) -> int:
        """A fresh booking of the guest (its first link issued and mailed)."""
        start = T0 + timedelta(days=1)
        return self.services.bookings.book_session(7, self.email, start).booking.id

    def issue(self, booking_id: int) -> object:
        return self.services.guests.issue_booking_link(self.email, booking_id)

    def invalidate(self, booking_id: int) -> object:
        reason = InvalidationReason.MANUAL_REVOCATION
        return self.services.guests.invalidate_tokens_by_booking_id(booking_id, reason)


def _median_us(history: int, op: str, rounds: int, calls: int) -> float:
    """Median over rounds of the mean µs per call of `op` on fresh one-token bookings."""
    guest = Guest(history)
    run = guest.issue if op == "issue" else guest.invalidate
    samples = []
    for _ in range(rounds):
        booking_ids = [guest.book() for _ in range(calls)]  # one link each (R2)
        gc.collect()
        gc.disable()  # as timeit does: a full collection's cost grows with the heap, not us
        try:
            started = time.perf_counter()
            for booking_id in booking_ids:
                run(booking_id)
            samples.append((time.perf_counter() - started) / calls * 1e6)
        finally:
            gc.enable()
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    args = parser.parse_args(argv)
    rounds, calls = (5, 200) if args.quick else (9, 1_000)
    print(f"In-memory cost vs history ({HISTORY:,} earlier entries; medians of {rounds} rounds)")
    worst = 0.0
    for op in ("issue", "invalidate"):  # warm-up: the first measured run pays for imports
        _median_us(0, op, 2, calls)
    for op in ("issue", "invalidate"):
        fresh = _median_us(0, op, rounds, calls)
        old = _median_us(HISTORY, op, rounds, calls)
        ratio = old / fresh
        worst = max(worst, ratio)
        print(f"  {op:<10} fresh {fresh:8.1f} µs   history {old:8.1f} µs   {ratio:.2f}x")
    verdict = "met" if worst <= GOAL else "MISSED"
    print(f"  goal <= {GOAL}x: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
