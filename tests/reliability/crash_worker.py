"""The child process of the crash-consistency test: invalidate, forever, until killed.

Run as ``python crash_worker.py <database url> <seed>``. It imports everything, prints
``loaded``, waits for a line on stdin (so the parent can start the next child while the
current one works), then loops: book a session, issue one to three more links of its guest
and sometimes a link of a second guest (stored through the ports, as migrated data would
be), then cancel the booking, reschedule it, or invalidate its links directly with a random
reason. After its first invalidation it prints ``ready``. The parent kills it with SIGKILL
at a random moment; whatever the moment, storage must hold no half-done invalidation.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine

from magiclink import InvalidationReason, LinkMessage, Requester
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import Notifier
from magiclink.testing import World

REASONS = [
    InvalidationReason.BOOKING_CANCELLED,
    InvalidationReason.RATING_SUBMITTED,
    InvalidationReason.INCIDENT_REPORTED,
    InvalidationReason.MANUAL_REVOCATION,
]


class DiscardingNotifier(Notifier):
    """Mail goes nowhere: only storage matters here."""

    def send(self, message: LinkMessage) -> None:
        pass


def main(url: str, seed: int) -> None:
    rng = random.Random(seed)
    engine = create_engine(url)
    world = World.build(
        SqlAlchemyUnitOfWork(engine), start=datetime.now(UTC), notifier=DiscardingNotifier()
    )
    guests, bookings = world.guests, world.bookings
    print("loaded", flush=True)
    if sys.stdin.readline().strip() != "go":
        return  # the parent went away before starting this worker
    announced = False
    start = world.clock.now() + timedelta(days=1)
    for i in range(1_000_000):
        email = f"crash-{seed}-{i}@example.com"
        booking = bookings.book_session(7, email, start).booking
        for _ in range(rng.randint(1, 3)):
            guests.generate_token_for_rescheduled_booking(email, booking.id)
        if rng.random() < 0.5:
            world.store_token(
                f"other-{seed}-{i}@example.com",
                booking_id=booking.id,
                booking_revision=booking.revision,
            )
        action = rng.random()
        if action < 0.4:
            bookings.cancel_session(booking.id, "crash test", "mentor", Requester.system())
        elif action < 0.6:
            bookings.reschedule_session(booking.id, start + timedelta(hours=1), Requester.system())
        else:
            guests.invalidate_tokens_by_booking_id(booking.id, rng.choice(REASONS))
        if not announced:
            print("ready", flush=True)
            announced = True


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
