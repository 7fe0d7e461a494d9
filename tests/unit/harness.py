"""The unit suite's defaults on the shipped test world (`magiclink.testing.World`).

`Harness` is `World` with this suite's start time and mentor; everything else (wiring,
probes, `store_token`) is the shipped world's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from magiclink import AuditAction, AuditEntry
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import UnitOfWork
from magiclink.testing import World, hash_token

__all__ = [
    "INTERVAL",
    "MENTOR",
    "STRANGER",
    "STUDENT",
    "T0",
    "TTL",
    "Harness",
    "hash_of",
    "inner_snapshot",
    "snapshot",
]

T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
INTERVAL = timedelta(seconds=60)
MENTOR = 41
STUDENT = "student@example.com"
STRANGER = "stranger@example.com"

hash_of = hash_token
"""SHA-256 hex of a raw token, as storage holds it (the shipped `hash_token`)."""


class Harness(World):
    """The shipped world started at `T0`, booking with `MENTOR`."""

    start = T0
    mentor_id = MENTOR

    def verify_audits(self) -> list[AuditEntry]:
        """The VERIFY_TOKEN entries, newest first."""
        return self.audit(AuditAction.VERIFY_TOKEN)


def snapshot(uow: UnitOfWork) -> dict[str, Any]:
    """Every table and index of an in-memory storage, copied (records are immutable)."""
    assert isinstance(uow, InMemoryUnitOfWork)
    store = uow._store
    return {
        name: {key: _frozen(item) for key, item in value.items()}
        for name, value in vars(store).items()
        if isinstance(value, dict)
    }


def _frozen(value: Any) -> Any:
    """A copy of an index's list (appended to in place), the record itself otherwise."""
    return tuple(value) if isinstance(value, list) else value


def inner_snapshot(uow: UnitOfWork) -> dict[str, Any]:
    """`snapshot` of the in-memory storage under a wrapper (e.g. `FaultyUnitOfWork`)."""
    return snapshot(getattr(uow, "inner", uow))
