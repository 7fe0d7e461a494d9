"""In-memory cost independent of history (issue 15.2, R10.5 in spirit).

    .venv/bin/python bench/history.py            # also run by `make bench`
    .venv/bin/python bench/history.py --quick

For one guest with no history and one with 20,000 earlier entries (tokens of that guest and
of its booking, and their audit entries), time `issue_booking_link` and
`invalidate_tokens_by_booking_id` of a one-token booking on the in-memory adapter, and
`issue_booking_link` again with `Settings.supersede_previous_links` on (it revokes the
booking's earlier link first). Each round builds both guests anew and times a batch of calls
on fresh bookings of each, in CPU time; the rounds of the two guests alternate, and the ratio
is the median of the old guest over the median of the fresh one, in the same run.
Goal: <= 1.5x.

Before the index appends became O(1) amortised (lists appended in place, undone on
rollback), every append copied the whole index tuple, so both operations grew with the
guest's history; before `invalidate_live` read the booking's own index, issuing with
supersede on scanned every token of the guest.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from datetime import UTC, datetime, timedelta

from magiclink import InvalidationReason, Services, Settings, build_services
from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork, ManualClock

HISTORY = 20_000
OPERATIONS = ("issue", "invalidate", "supersede")
"""What is timed: `supersede` is `issue` with `Settings.supersede_previous_links` on."""
GOAL = 1.5
T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Guest:
    """One guest's services over a storage holding `history` earlier entries of theirs."""

    email = "old@example.com"

    def __init__(self, history: int, *, supersede: bool = False) -> None:
        uow, clock = InMemoryUnitOfWork(), ManualClock(T0)

        def services(**settings: bool) -> Services:
            return build_services(
                uow,
                notifier=InMemoryNotifier(),
                clock=clock,
                settings=Settings(token_ttl=timedelta(hours=1), **settings),
            )

        self.services = services()
        booking_id = self.book()
        for _ in range(history // 2):  # each issue stores a token and a CREATE_TOKEN entry
            self.issue(booking_id)
        if supersede:  # on the same storage: issuing then revokes the booking's earlier link
            self.services = services(supersede_previous_links=True)

    def book(self) -> int:
        """A fresh booking of the guest (its first link issued and mailed)."""
        start = T0 + timedelta(days=1)
        return self.services.bookings.book_session(7, self.email, start).booking.id

    def issue(self, booking_id: int) -> object:
        return self.services.guests.issue_booking_link(self.email, booking_id)

    def invalidate(self, booking_id: int) -> object:
        reason = InvalidationReason.MANUAL_REVOCATION
        return self.services.guests.invalidate_tokens_by_booking_id(booking_id, reason)


def _round_us(guest: Guest, op: str, calls: int) -> float:
    """The mean µs per call of `op` over `calls` fresh one-token bookings of `guest`.

    CPU time of this process, not wall time: on a shared machine the wall clock also counts
    the time other processes held the core, which has nothing to do with the guest's history.
    """
    run = guest.invalidate if op == "invalidate" else guest.issue
    booking_ids = [guest.book() for _ in range(calls)]  # one link each (R2)
    gc.collect()
    gc.disable()  # as timeit does: a full collection's cost grows with the heap, not us
    try:
        started = time.process_time()
        for booking_id in booking_ids:
            run(booking_id)
        return (time.process_time() - started) / calls * 1e6
    finally:
        gc.enable()


def compare(op: str, rounds: int, calls: int) -> tuple[float, float]:
    """Median µs per call of `op` for a fresh guest and for one with `HISTORY` entries.

    Each round builds both guests anew (so the fresh one stays fresh: a round adds only its
    own `calls` bookings), and the rounds of the two alternate which goes first, so a change
    of machine load during the run weighs on both medians alike.
    """
    supersede = op == "supersede"
    samples: dict[int, list[float]] = {0: [], HISTORY: []}
    for i in range(rounds):
        for history in (0, HISTORY) if i % 2 == 0 else (HISTORY, 0):
            guest = Guest(history, supersede=supersede)
            samples[history].append(_round_us(guest, op, calls))
    return statistics.median(samples[0]), statistics.median(samples[HISTORY])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    args = parser.parse_args(argv)
    rounds, calls = (6, 200) if args.quick else (10, 1_000)
    print(f"In-memory cost vs history ({HISTORY:,} earlier entries; medians of {rounds} rounds)")
    warm = Guest(0)
    for op in OPERATIONS:  # warm-up: the first measured round pays for imports
        _round_us(warm, op, calls)
    worst = 0.0
    for op in OPERATIONS:
        fresh, old = compare(op, rounds, calls)
        ratio = old / fresh
        worst = max(worst, ratio)
        print(f"  {op:<10} fresh {fresh:8.1f} µs   history {old:8.1f} µs   {ratio:.2f}x")
    verdict = "met" if worst <= GOAL else "MISSED"
    print(f"  goal <= {GOAL}x (ratio of medians, same run): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
