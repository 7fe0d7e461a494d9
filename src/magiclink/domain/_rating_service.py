"""RatingService: a student's one rating of a session, after which its links die (R3)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from magiclink.domain._enums import InvalidationReason
from magiclink.domain._errors import DuplicateRating, InvalidInput
from magiclink.domain._lifecycle import LifecycleService, load_for_change, revoke_links
from magiclink.domain._link_actions import LinkGrant
from magiclink.domain._policy import MAX_TEXT_ID_LENGTH, require_id, require_text
from magiclink.domain._records import UNSAVED_ID, Rating
from magiclink.domain._transactions import read, run
from magiclink.ports._unit_of_work import Transaction

MAX_FEEDBACK: Final = 2_000


class RatingService(LifecycleService):
    """Stores ratings. It never sees tokens: the host consumes or verifies the link first.

    `RatingService(uow, guest_service, *, clock=None, metrics=None)`.
    """

    def get_rating(self, booking_id: int) -> Rating | None:
        """The booking's rating, or None (read-only; the guest's page hides "rate" once rated)."""
        booking_id = require_id(booking_id, "booking_id")
        return run(self._uow, read(lambda tx: tx.ratings.get_by_booking(booking_id)))

    def create_rating(
        self,
        booking_id: int,
        student_profile_id: str,
        rating: int,
        feedback: str | None = None,
    ) -> Rating:
        """Store the booking's rating, then invalidate its links (reason `rating_submitted`).

        Checks, first failure raising: rating not an int in 1..5, feedback over 2,000
        characters, or a malformed id → `InvalidInput`; unknown booking → `BookingNotFound`;
        cancelled or no-show → `BookingClosed`; already rated → `DuplicateRating`. A failed
        invalidation never fails the rating (R9); it is logged and counted.
        """
        feedback = _checked(rating, feedback)
        booking_id = require_id(booking_id, "booking_id")
        profile = require_text(
            student_profile_id, "student_profile_id", max_length=MAX_TEXT_ID_LENGTH
        )

        def work(tx: Transaction, now: datetime, operation_id: str) -> Rating:
            booking = load_for_change(tx, booking_id, None)
            if tx.ratings.get_by_booking(booking_id) is not None:
                raise DuplicateRating()
            revoke_links(tx, booking)
            return tx.ratings.add(
                Rating(
                    id=UNSAVED_ID,
                    booking_id=booking_id,
                    student_profile_id=profile,
                    rating=rating,
                    feedback=feedback,
                    created_at=now,
                    operation_id=operation_id,
                )
            )

        stored = self._run_once(work, lambda tx: [tx.ratings.get_by_booking(booking_id)])
        reason = InvalidationReason.RATING_SUBMITTED
        self._invalidate_after(booking_id, reason, {"event": "rating", "rating_id": stored.id})
        return stored

    def rate_with_link(
        self,
        raw: str,
        rating: int,
        feedback: str | None = None,
        *,
        booking_id: int | None = None,
    ) -> Rating:
        """Rate with the guest's link, in one transaction (§8.1); R3 rules. The rating's
        `student_profile_id` is `guest:<guest id>`."""
        feedback = _checked(rating, feedback)

        def act(tx: Transaction, grant: LinkGrant) -> Rating:
            if tx.ratings.get_by_booking(grant.booking.id) is not None:
                raise DuplicateRating()
            return tx.ratings.add(
                Rating(
                    id=UNSAVED_ID,
                    booking_id=grant.booking.id,
                    student_profile_id=grant.profile_id,
                    rating=rating,
                    feedback=feedback,
                    created_at=grant.now,
                )
            )

        return self._act_with_link(
            raw, booking_id, act, InvalidationReason.RATING_SUBMITTED, "rating"
        )


def _checked(rating: object, feedback: object) -> str | None:
    """The R3 input rules: rating an int in 1..5, feedback None or at most 2,000 characters."""
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise InvalidInput("rating must be an integer from 1 to 5")
    if feedback is None:
        return None
    return require_text(feedback, "feedback", max_length=MAX_FEEDBACK, allow_empty=True)


__all__ = ["MAX_FEEDBACK", "RatingService"]
