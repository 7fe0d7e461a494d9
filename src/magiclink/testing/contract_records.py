"""Contracts of `RatingRepository`, `IncidentRepository` and `AuditLog`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from magiclink.domain._enums import AuditAction, IncidentType
from magiclink.domain._errors import DuplicateRating
from magiclink.domain._records import AuditEntry, Incident, Rating
from magiclink.ports._unit_of_work import Transaction, UnitOfWork
from magiclink.testing.contract_support import MICRO, MISSING_ID, T0, ContractBase, new_uid


class RatingRepositoryContract(ContractBase):
    """Every `RatingRepository` behaves like this (R3, SPEC §4 `RatingService`)."""

    def _rate(
        self, uow: UnitOfWork, booking_id: int, rating: int, feedback: str | None = None
    ) -> Rating:
        """Store a rating of the booking in its own transaction."""
        return self.run(
            uow, lambda tx: self.add_rating(tx, booking_id, rating=rating, feedback=feedback)
        )

    def test_add_and_get_by_booking(self, uow: UnitOfWork) -> None:
        """`add` returns the stored rating; `get_by_booking` returns the same record."""
        booking = self.run(uow, self.add_booking)
        created = T0 + timedelta(microseconds=999_999)
        rating = self.run(
            uow,
            lambda tx: self.add_rating(
                tx,
                booking.id,
                student_profile_id="profile-7",
                rating=5,
                feedback="Très clair — merci !",
                created_at=created,
            ),
        )
        assert isinstance(rating.id, int)
        assert rating == Rating(
            id=rating.id,
            booking_id=booking.id,
            student_profile_id="profile-7",
            rating=5,
            feedback="Très clair — merci !",
            created_at=created,
        )
        assert self.read(uow, lambda tx: tx.ratings.get_by_booking(booking.id)) == rating

    def test_rating_operation_id_round_trips_issue_12_2(self, uow: UnitOfWork) -> None:
        """The storing call's operation id is read back with the rating (its `landed` key);
        a rating stored without one reads back None."""
        tagged, untagged = self.run(uow, self.add_booking), self.run(uow, self.add_booking)
        for booking, operation in ((tagged, "e" * 32), (untagged, None)):

            def rate(tx: Transaction, b: int = booking.id, o: str | None = operation) -> Rating:
                return self.add_rating(tx, b, rating=4, operation_id=o)

            self.run(uow, rate)
        with uow.transaction() as tx:
            read_tagged = tx.ratings.get_by_booking(tagged.id)
            read_untagged = tx.ratings.get_by_booking(untagged.id)
        assert read_tagged is not None and read_tagged.operation_id == "e" * 32
        assert read_untagged is not None and read_untagged.operation_id is None

    def test_feedback_may_be_none_or_long(self, uow: UnitOfWork) -> None:
        """No feedback is stored as None; 2,000 characters (the service's bound) fit."""
        quiet = self.run(uow, self.add_booking)
        chatty = self.run(uow, self.add_booking)
        self._rate(uow, quiet.id, 1, None)
        self._rate(uow, chatty.id, 1, "ü" * 2000)
        with uow.transaction() as tx:
            stored_quiet = tx.ratings.get_by_booking(quiet.id)
            stored_chatty = tx.ratings.get_by_booking(chatty.id)
        assert stored_quiet is not None
        assert stored_quiet.feedback is None
        assert stored_chatty is not None
        assert stored_chatty.feedback == "ü" * 2000

    def test_unrated_booking_gives_none(self, uow: UnitOfWork) -> None:
        """No rating yet (or no booking): None."""
        booking = self.run(uow, self.add_booking)
        with uow.transaction() as tx:
            assert tx.ratings.get_by_booking(booking.id) is None
            assert tx.ratings.get_by_booking(MISSING_ID) is None

    def test_second_rating_is_duplicate_rating_r3_4(self, uow: UnitOfWork) -> None:
        """R3.4: one rating per booking; the second raises `DuplicateRating`, the first stays."""
        booking = self.run(uow, self.add_booking)
        first = self.run(uow, lambda tx: self.add_rating(tx, booking.id, rating=4))
        with uow.transaction() as tx, pytest.raises(DuplicateRating):
            self.add_rating(
                tx,
                booking.id,
                student_profile_id="q",
                rating=1,
                feedback="again",
                created_at=T0 + MICRO,
            )
        assert self.read(uow, lambda tx: tx.ratings.get_by_booking(booking.id)) == first

    def test_ratings_are_per_booking(self, uow: UnitOfWork) -> None:
        """Two bookings, two ratings, each found by its own booking."""
        first = self.run(uow, self.add_booking)
        second = self.run(uow, self.add_booking)
        ratings = [self._rate(uow, first.id, 2), self._rate(uow, second.id, 3)]
        assert ratings[0].id != ratings[1].id
        with uow.transaction() as tx:
            assert tx.ratings.get_by_booking(first.id) == ratings[0]
            assert tx.ratings.get_by_booking(second.id) == ratings[1]


class IncidentRepositoryContract(ContractBase):
    """Every `IncidentRepository` behaves like this (R4, SPEC §2 Incident)."""

    def _add(
        self,
        uow: UnitOfWork,
        booking_uid: str,
        *,
        booking_id: int | None = None,
        type: IncidentType = IncidentType.LATE,
        description: str = "Ten minutes late.",
        reported_by_user_id: int | None = None,
        after: timedelta = timedelta(0),
    ) -> Incident:
        """Store an incident `after` the suite's `T0`, in its own transaction."""
        return self.run(
            uow,
            lambda tx: self.add_incident(
                tx,
                booking_uid,
                booking_id,
                student_profile_id="mentor-profile-1",
                type=type,
                description=description,
                reported_by_user_id=reported_by_user_id,
                created_at=T0 + after,
            ),
        )

    def test_add_stores_every_field(self, uow: UnitOfWork) -> None:
        """`add` returns the stored incident with an int id; the list returns the same."""
        booking = self.run(uow, self.add_booking)
        incident = self._add(
            uow,
            booking.uid,
            booking_id=booking.id,
            type=IncidentType.INAPPROPRIATE_BEHAVIOR,
            reported_by_user_id=2**63 - 1,
            after=timedelta(microseconds=31),
        )
        assert isinstance(incident.id, int)
        assert incident == Incident(
            id=incident.id,
            booking_uid=booking.uid,
            booking_id=booking.id,
            student_profile_id="mentor-profile-1",
            type=IncidentType.INAPPROPRIATE_BEHAVIOR,
            description="Ten minutes late.",
            reported_by_user_id=2**63 - 1,
            created_at=T0 + timedelta(microseconds=31),
        )
        assert self.read(uow, lambda tx: tx.incidents.list_by_booking_uid(booking.uid)) == [
            incident
        ]

    def test_incident_operation_id_round_trips_issue_12_2(self, uow: UnitOfWork) -> None:
        """The storing call's operation id is read back with the incident (its `landed`
        key); one stored without it reads back None."""
        for operation in ("f" * 32, None):

            def report(tx: Transaction, o: str | None = operation) -> Incident:
                return self.add_incident(
                    tx, "uid-op", student_profile_id="p", type=IncidentType.LATE, operation_id=o
                )

            self.run(uow, report)
        listed = self.read(uow, lambda tx: tx.incidents.list_by_booking_uid("uid-op"))
        assert [incident.operation_id for incident in listed] == ["f" * 32, None]

    @pytest.mark.parametrize("incident_type", list(IncidentType))
    def test_every_type_round_trips_as_the_enum(
        self, uow: UnitOfWork, incident_type: IncidentType
    ) -> None:
        """A stored type reads back as the same `IncidentType` member."""
        uid = new_uid()
        self._add(uow, uid, type=incident_type)
        [stored] = self.read(uow, lambda tx: tx.incidents.list_by_booking_uid(uid))
        assert stored.type is incident_type

    def test_unknown_booking_empty_and_long_description(self, uow: UnitOfWork) -> None:
        """R4: an unknown uid is stored with no booking id; descriptions may be empty or
        5,000 characters; no reporter is None."""
        uid = new_uid()
        empty = self._add(uow, uid, description="")
        long = self._add(uow, uid, description="ж" * 5000, after=MICRO)
        stored = self.read(uow, lambda tx: tx.incidents.list_by_booking_uid(uid))
        assert stored == [empty, long]
        assert stored[0].booking_id is None
        assert stored[0].description == ""
        assert stored[0].reported_by_user_id is None
        assert stored[1].description == "ж" * 5000

    def test_list_by_booking_uid_oldest_first_and_filtered(self, uow: UnitOfWork) -> None:
        """Only that uid's incidents, oldest first; an unknown uid gives an empty list."""
        uid, other = new_uid(), new_uid()
        first = self._add(uow, uid, after=timedelta(minutes=1))
        self._add(uow, other)
        second = self._add(uow, uid, after=timedelta(minutes=2))
        third = self._add(uow, uid, after=timedelta(minutes=3))
        with uow.transaction() as tx:
            assert tx.incidents.list_by_booking_uid(uid) == [first, second, third]
            assert tx.incidents.list_by_booking_uid(new_uid()) == []


class AuditLogContract(ContractBase):
    """Every `AuditLog` behaves like this (R8, SPEC §2 Audit entry)."""

    @staticmethod
    def _fields(entry: AuditEntry) -> tuple[object, ...]:
        """An entry without its id, for comparing with what was written."""
        return (
            entry.guest_id,
            entry.endpoint,
            entry.action,
            entry.resource_id,
            entry.success,
            dict(entry.metadata),
            entry.created_at,
        )

    def test_a_stored_entry_keeps_its_metadata_as_written_r8(self, uow: UnitOfWork) -> None:
        """R8: the log is append-only — changing the dict passed in afterwards (a host's
        `log_access` metadata) changes no stored entry, and a read entry's metadata is
        read-only."""
        metadata: dict[str, object] = {"count": 1}
        entry = self.audit_entry(resource_id="kept", metadata=metadata)
        self.run(uow, lambda tx: tx.audit.add_many([entry]))
        metadata["count"] = 2
        metadata["added"] = True
        [stored] = self.read(uow, lambda tx: tx.audit.list(booking_id=None, guest_id=None))
        assert dict(stored.metadata) == {"count": 1}
        with pytest.raises(TypeError):
            stored.metadata["count"] = 3  # type: ignore[index]

    def test_add_many_stores_every_field_r8(self, uow: UnitOfWork) -> None:
        """R8.2-8.5: guest, action, resource, success, JSON metadata and time round-trip."""
        metadata = {
            "reason": "booking_cancelled",
            "count": 3,
            "nested": {"ids": [1, 2, 3], "ok": True},
            "note": "élève",
            "nothing": None,
        }
        written = self.audit_entry(
            guest_id=12,
            resource_id="34",
            created_at=T0 + timedelta(microseconds=250_001),
            metadata=metadata,
        )
        failed = self.audit_entry(
            resource_id=None, action=AuditAction.VERIFY_TOKEN, success=False, created_at=T0
        )
        self.run(uow, lambda tx: tx.audit.add_many([written, failed]))
        entries = self.read(uow, lambda tx: tx.audit.list())
        assert [self._fields(e) for e in entries] == [
            (12, "contract", "INVALIDATE_TOKEN", "34", True, metadata, written.created_at),
            (None, "contract", "VERIFY_TOKEN", None, False, {}, T0),
        ]
        assert all(isinstance(e.id, int) for e in entries)
        assert entries[0].id != entries[1].id
        assert entries[0].success is True
        assert entries[1].success is False

    def test_add_many_of_nothing(self, uow: UnitOfWork) -> None:
        """An empty batch is allowed and writes nothing."""
        self.run(uow, lambda tx: tx.audit.add_many([]))
        assert self.read(uow, lambda tx: tx.audit.list()) == []

    def test_list_newest_first_then_by_id(self, uow: UnitOfWork) -> None:
        """Newest `created_at` first; among equal times, the later written (higher id) first."""
        self.run(
            uow,
            lambda tx: tx.audit.add_many(
                [
                    self.audit_entry(resource_id="a", created_at=T0),
                    self.audit_entry(resource_id="b", created_at=T0 + timedelta(hours=1)),
                ]
            ),
        )
        self.run(uow, lambda tx: tx.audit.add_many([self.audit_entry(resource_id="c")]))
        self.run(
            uow,
            lambda tx: tx.audit.add_many(
                [self.audit_entry(resource_id="d", created_at=T0 - MICRO)]
            ),
        )
        entries = self.read(uow, lambda tx: tx.audit.list())
        assert [e.resource_id for e in entries] == ["b", "c", "a", "d"]

    def test_list_filters_by_booking_as_string_resource_id(self, uow: UnitOfWork) -> None:
        """R8.2, `audit_trail(booking_id=B)`: exactly `resource_id == str(B)`, no prefix match."""
        self.run(
            uow,
            lambda tx: tx.audit.add_many(
                [
                    self.audit_entry(resource_id=rid, created_at=T0 + timedelta(seconds=i))
                    for i, rid in enumerate(["7", "17", "70", "7", None, "07"])
                ]
            ),
        )
        entries = self.read(uow, lambda tx: tx.audit.list(booking_id=7))
        assert [e.resource_id for e in entries] == ["7", "7"]
        assert entries[0].created_at == T0 + timedelta(seconds=3)
        assert self.read(uow, lambda tx: tx.audit.list(booking_id=MISSING_ID)) == []

    def test_list_filters_by_guest_and_by_both(self, uow: UnitOfWork) -> None:
        """A guest filter keeps that guest's entries; both filters must hold together."""
        rows = [(1, "5"), (2, "5"), (1, "6"), (None, "5"), (1, "5")]
        self.run(
            uow,
            lambda tx: tx.audit.add_many(
                [
                    self.audit_entry(
                        guest_id=g, resource_id=r, created_at=T0 + timedelta(seconds=i)
                    )
                    for i, (g, r) in enumerate(rows)
                ]
            ),
        )
        with uow.transaction() as tx:
            by_guest = tx.audit.list(guest_id=1)
            both = tx.audit.list(booking_id=5, guest_id=1)
            by_booking = tx.audit.list(booking_id=5)
        assert [(e.guest_id, e.resource_id) for e in by_guest] == [(1, "5"), (1, "6"), (1, "5")]
        assert [e.created_at for e in both] == [T0 + timedelta(seconds=4), T0]
        assert [e.guest_id for e in by_booking] == [1, None, 2, 1]

    def test_list_limit_keeps_the_newest(self, uow: UnitOfWork) -> None:
        """`limit` cuts the newest-first list; the default is 100."""
        self.run(
            uow,
            lambda tx: tx.audit.add_many(
                [
                    self.audit_entry(resource_id="1", created_at=T0 + timedelta(seconds=i))
                    for i in range(105)
                ]
            ),
        )
        with uow.transaction() as tx:
            three = tx.audit.list(booking_id=1, limit=3)
            default = tx.audit.list()
        assert [e.created_at for e in three] == [T0 + timedelta(seconds=s) for s in (104, 103, 102)]
        assert len(default) == 100
        assert default[-1].created_at == T0 + timedelta(seconds=5)

    def test_by_operation_finds_exactly_that_operations_entries_issue_12_2(
        self, uow: UnitOfWork
    ) -> None:
        """Issue 12.2: the entries written with one operation id, in insertion order, and
        no other: not another operation's, not those without one; the id round-trips."""
        ours, other = "a" * 32, "b" * 32
        self.run(
            uow,
            lambda tx: tx.audit.add_many(
                [
                    self.audit_entry(resource_id="1", operation_id=ours),
                    self.audit_entry(resource_id="2", operation_id=other),
                    self.audit_entry(resource_id="3"),
                    self.audit_entry(resource_id="4", operation_id=ours, created_at=T0 - MICRO),
                ]
            ),
        )
        with uow.transaction() as tx:
            found = tx.audit.by_operation(ours)
            theirs = tx.audit.by_operation(other)
            unknown = tx.audit.by_operation("c" * 32)
            listed = tx.audit.list()
        assert [e.resource_id for e in found] == ["1", "4"]
        assert {e.operation_id for e in found} == {ours}
        assert [e.resource_id for e in theirs] == ["2"]
        assert list(unknown) == []
        assert {e.resource_id: e.operation_id for e in listed}["3"] is None

    def test_by_operation_sees_no_rolled_back_entry_issue_12_2(self, uow: UnitOfWork) -> None:
        """An operation whose transaction rolled back left no entry to find: its `landed`
        check then says it did not land."""
        operation = "d" * 32
        with uow.transaction() as tx:
            tx.audit.add_many([self.audit_entry(operation_id=operation)])
            assert [e.operation_id for e in tx.audit.by_operation(operation)] == [operation]
            tx.rollback()
        assert list(self.read(uow, lambda tx: tx.audit.by_operation(operation))) == []


__all__ = ["AuditLogContract", "IncidentRepositoryContract", "RatingRepositoryContract"]
