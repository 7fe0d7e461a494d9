"""Rows for the SQL integration tests, written through the adapter itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

from magiclink import (
    Booking,
    BookingStatus,
    Guest,
    MagicLinkToken,
    generate_raw_token,
    hash_token,
)
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import UNSAVED_ID

NOW: Final = datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
TTL: Final = timedelta(minutes=15)


@attrs.frozen
class Seeded:
    """A booking, its guests and its tokens (with the raw tokens, for the services)."""

    booking: Booking
    guests: list[Guest]
    tokens: list[MagicLinkToken]
    raws: list[str]


def seed_booking(
    uow: SqlAlchemyUnitOfWork,
    *,
    tokens: int = 1,
    guests: int = 1,
    uid: str | None = None,
    now: datetime = NOW,
) -> Seeded:
    """One scheduled booking with `tokens` live tokens spread round-robin over `guests`.

    The booking's own guest e-mail is the first guest's.
    """
    uid = uid or generate_raw_token()[:16]
    emails = [f"guest{i}-{uid}@example.com" for i in range(guests)]
    with uow.transaction() as tx:
        booking = tx.bookings.add(
            Booking(
                id=UNSAVED_ID,
                uid=uid,
                mentor_id=42,
                guest_email=emails[0],
                start_time=now + timedelta(days=1),
                end_time=now + timedelta(days=1, minutes=15),
                status=BookingStatus.SCHEDULED,
                revision=0,
            )
        )
        people = [
            tx.guests.get_or_create(email, now=now, last_request_at=None)[0] for email in emails
        ]
        raws = [generate_raw_token() for _ in range(tokens)]
        stored = [
            tx.tokens.add(
                MagicLinkToken.new(
                    token_hash=hash_token(raw),
                    guest_id=people[i % guests].id,
                    booking_id=booking.id,
                    booking_revision=booking.revision,
                    expires_at=now + TTL,
                    created_at=now,
                )
            )
            for i, raw in enumerate(raws)
        ]
        tx.commit()
    return Seeded(booking=booking, guests=people, tokens=stored, raws=raws)
