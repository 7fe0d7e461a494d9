"""Commits whose outcome is unknown, on purpose: the fault wrappers of the `landed` tests.

`CommitFailsThen` rolls the armed commit back, raises the transient `StorageError` of a lost
connection, and runs `then` (another caller's call) before the runner's `landed` check
reads. `AckLost` lets the armed commit land, then raises the same error. `worlds` and
`lost_ack` build the worlds the tests run on (issue 12.2, R9.4).
"""

from __future__ import annotations

from collections.abc import Callable

from magiclink import StorageError
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import Transaction, UnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork
from magiclink.testing.world import World

__all__ = ["AckLost", "CommitFailsThen", "lost_ack", "worlds"]


class CommitFailsThen(FaultyUnitOfWork):
    """The `armed` write transaction's commit rolls back and reports a lost connection; the
    next read-only transaction (the runner's `landed` check) first runs `then`."""

    def __init__(self, inner: UnitOfWork) -> None:
        super().__init__(inner)
        self.armed = False
        self.then: Callable[[], object] | None = None
        self.failed = 0

    def transaction(self, *, readonly: bool = False) -> Transaction:
        if readonly and self.failed and self.then is not None:
            then, self.then = self.then, None
            then()
        tx = super().transaction(readonly=readonly)
        if readonly or not self.armed:
            return tx

        def roll_back_and_lose() -> None:
            self.armed = False
            self.failed += 1
            tx.rollback()
            raise StorageError("Storage error (OperationalError): connection lost", transient=True)

        tx.commit = roll_back_and_lose  # type: ignore[method-assign]
        return tx


class AckLost(FaultyUnitOfWork):
    """The `armed` write transaction commits for real, then reports a lost connection."""

    def __init__(self, inner: UnitOfWork) -> None:
        super().__init__(inner)
        self.armed = False
        self.lost = 0

    def transaction(self, *, readonly: bool = False) -> Transaction:
        tx = super().transaction(readonly=readonly)
        if readonly or not self.armed:
            return tx
        commit = tx.commit

        def commit_then_lose() -> None:
            commit()
            self.armed = False
            self.lost += 1
            raise StorageError("Storage error (OperationalError): connection lost", transient=True)

        tx.commit = commit_then_lose  # type: ignore[method-assign]
        return tx


def worlds() -> tuple[CommitFailsThen, World, World]:
    """A world whose storage fails one commit, and a second world (the other caller) on the
    same storage and at the same frozen instant."""
    inner = InMemoryUnitOfWork()
    failing = CommitFailsThen(inner)
    world = World.build(failing)
    other = World.build(inner, start=world.clock.now())
    return failing, world, other


def lost_ack() -> tuple[AckLost, World]:
    """A world whose storage loses the acknowledgement of one armed commit that landed."""
    losing = AckLost(InMemoryUnitOfWork())
    return losing, World.build(losing)
