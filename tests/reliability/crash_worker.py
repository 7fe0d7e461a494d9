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

import hashlib
import random
import secrets
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine

from magiclink import BookingService, GuestService, InvalidationReason, LinkMessage, Requester
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import Notifier

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


def craft_link(uow: SqlAlchemyUnitOfWork, email: str, booking_id: int, revision: int) -> None:
    now = datetime.now(UTC)
    raw = secrets.token_hex(32)
    with uow.transaction() as tx:
        guest, _ = tx.guests.get_or_create(email, now=now, last_request_at=None)
        tx.tokens.add(
            token_hash=hashlib.sha256(raw.encode("ascii")).hexdigest(),
            guest_id=guest.id,
            booking_id=booking_id,
            booking_revision=revision,
            expires_at=now + timedelta(minutes=15),
            created_at=now,
        )
        tx.commit()


def main(url: str, seed: int) -> None:
    rng = random.Random(seed)
    engine = create_engine(url)
    uow = SqlAlchemyUnitOfWork(engine)
    guests = GuestService(uow)
    bookings = BookingService(uow, guests, notifier=DiscardingNotifier())
    print("loaded", flush=True)
    if sys.stdin.readline().strip() != "go":
        return  # the parent went away before starting this worker
    announced = False
    start = datetime.now(UTC) + timedelta(days=1)
    for i in range(1_000_000):
        email = f"crash-{seed}-{i}@example.com"
        booking = bookings.book_session(7, email, start).booking
        for _ in range(rng.randint(1, 3)):
            guests.generate_token_for_rescheduled_booking(email, booking.id)
        if rng.random() < 0.5:
            craft_link(uow, f"other-{seed}-{i}@example.com", booking.id, booking.revision)
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
