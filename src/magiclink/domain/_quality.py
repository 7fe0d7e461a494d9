"""QualityRepository: incident reports about sessions, after which the links die (R4)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Final

from magiclink.domain._enums import IncidentType, InvalidationReason
from magiclink.domain._errors import InvalidInput
from magiclink.domain._lifecycle import LifecycleService, revoke_links
from magiclink.domain._link_actions import LinkGrant
from magiclink.domain._observability import Events, log_event
from magiclink.domain._policy import MAX_TEXT_ID_LENGTH, require_optional_id, require_text
from magiclink.domain._records import UNSAVED_ID, Incident
from magiclink.ports._unit_of_work import Transaction

MAX_DESCRIPTION: Final = 5_000


def parse_incident_type(value: object) -> IncidentType:
    """The `IncidentType` named by `value` (a member, its value or its name), else `InvalidInput`."""
    if isinstance(value, IncidentType):
        return value
    if isinstance(value, str):
        candidate = value.strip().lower()
        if candidate in IncidentType._value2member_map_:
            return IncidentType(candidate)
    raise InvalidInput("Unknown incident type")


class QualityRepository(LifecycleService):
    """Stores incident reports and kills the reported booking's links.

    `QualityRepository(uow, guest_service, *, clock=None, metrics=None)`.
    """

    def create_incident(
        self,
        student_profile_id: str,
        booking_uid: str,
        type: IncidentType | str,
        description: str,
        reported_by_user_id: int | None = None,
    ) -> Incident:
        """Store the incident, find its booking by uid, and invalidate the booking's links.

        `description` may be empty, at most 5,000 characters. Malformed input raises
        `InvalidInput`. An unknown uid still stores the incident, skips invalidation and
        logs a WARNING. A failed invalidation never fails the report (R9).
        """
        profile = require_text(
            student_profile_id, "student_profile_id", max_length=MAX_TEXT_ID_LENGTH
        )
        uid = require_text(booking_uid, "booking_uid", max_length=MAX_TEXT_ID_LENGTH)
        kind = parse_incident_type(type)
        text = require_text(
            description, "description", max_length=MAX_DESCRIPTION, allow_empty=True
        )
        reporter = require_optional_id(reported_by_user_id, "reported_by_user_id")
        incident = self._store(uid, profile, kind, text, reporter)
        reason = InvalidationReason.INCIDENT_REPORTED
        booking_id = incident.booking_id
        if booking_id is None:
            log_event(
                logging.WARNING,
                Events.INCIDENT_BOOKING_UNKNOWN,
                booking_id=None,
                reason=str(reason),
                incident_id=incident.id,
                count=0,
            )
            return incident
        self._invalidate_after(
            booking_id,
            reason,
            {"event": "incident", "incident_id": incident.id, "type": str(kind)},
        )
        return incident

    def _store(
        self, uid: str, profile: str, kind: IncidentType, text: str, reporter: int | None
    ) -> Incident:
        """Store the incident and revoke its booking's links, in one transaction (§8.4)."""

        def work(tx: Transaction, now: datetime, operation_id: str) -> Incident:
            booking = tx.bookings.get_by_uid(uid)
            if booking is not None:  # the increment is atomic: no lock needed to kill (§8.4)
                revoke_links(tx, booking)
            return tx.incidents.add(
                Incident(
                    id=UNSAVED_ID,
                    booking_uid=uid,
                    booking_id=None if booking is None else booking.id,
                    student_profile_id=profile,
                    type=kind,
                    description=text,
                    reported_by_user_id=reporter,
                    created_at=now,
                    operation_id=operation_id,
                )
            )

        return self._run_once(work, lambda tx: tx.incidents.list_by_booking_uid(uid))

    def report_with_link(
        self,
        raw: str,
        type: IncidentType | str,
        description: str,
        *,
        booking_id: int | None = None,
    ) -> Incident:
        """Report an incident with the guest's link, in one transaction (§8.1); R4 rules.
        The incident's `student_profile_id` is `guest:<guest id>`."""
        kind = parse_incident_type(type)
        text = require_text(
            description, "description", max_length=MAX_DESCRIPTION, allow_empty=True
        )

        def act(tx: Transaction, grant: LinkGrant) -> Incident:
            return tx.incidents.add(
                Incident(
                    id=UNSAVED_ID,
                    booking_uid=grant.booking.uid,
                    booking_id=grant.booking.id,
                    student_profile_id=grant.profile_id,
                    type=kind,
                    description=text,
                    reported_by_user_id=None,
                    created_at=grant.now,
                )
            )

        reason = InvalidationReason.INCIDENT_REPORTED
        return self._act_with_link(raw, booking_id, act, reason, "incident")


__all__ = ["MAX_DESCRIPTION", "QualityRepository", "parse_incident_type"]
