"""The port contract suite on the in-memory adapter (the reference implementation)."""

from __future__ import annotations

from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import UnitOfWork
from magiclink.testing.contract import UnitOfWorkContract


class TestInMemoryContract(UnitOfWorkContract):
    """`InMemoryUnitOfWork` passes the whole contract."""

    def make_uow(self) -> UnitOfWork:
        return InMemoryUnitOfWork()
