"""SPEC §10: the port contract suite (`magiclink.testing.UnitOfWorkContract`) passes on the
unit of work the async services run on — `AsyncSqlAlchemyUnitOfWork(engine).sync`, driven
through the greenlet bridge by aiosqlite and asyncpg.

Each test of the suite runs, unchanged, inside `greenlet_spawn` on an event loop of its own
(the `pytest_pyfunc_call` hook of tests/asyncio/conftest.py, for classes marked
`in_bridge`); the engine is disposed of in that loop. Only the tests that start threads are
left out (`THREADED`, see there).
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from magiclink.asyncio import AsyncSqlAlchemyUnitOfWork
from magiclink.ports import UnitOfWork
from magiclink.testing.contract import UnitOfWorkContract
from tests.asyncio.targets import aiosqlite_target, asyncpg_target

# The contract's tests that start threads: an async engine's connections belong to one event
# loop, so threads sharing it is not a configuration an asyncio host can have. Their task
# equivalents (50 racing tasks per round, one winner) are tests/asyncio/test_races.py.
THREADED = (
    "test_racing_consumers_exactly_one_wins_5_1",
    "test_racing_get_or_create_one_guest",
    "test_racing_request_slot_claims_once",
    "test_racing_batch_invalidations_count_each_token_once_r8_3",
    "test_racing_single_invalidations_one_winner",
    "test_uncommitted_write_is_invisible_to_another_transaction",
    "test_committed_write_is_visible_to_another_thread",
    "test_get_for_update_prevents_lost_updates",
)


def _without_threads(cls: type[UnitOfWorkContract]) -> type[UnitOfWorkContract]:
    for name in THREADED:
        assert callable(getattr(UnitOfWorkContract, name)), name  # the list cannot go stale
        setattr(cls, name, None)  # not collected
    return cls


@_without_threads
@pytest.mark.in_bridge
class TestAiosqliteContract(UnitOfWorkContract):
    """The whole contract through aiosqlite."""

    @pytest.fixture
    def uow(self, sqlite_engine: Engine) -> UnitOfWork:
        return AsyncSqlAlchemyUnitOfWork(aiosqlite_target(sqlite_engine).engine()).sync


@_without_threads
@pytest.mark.in_bridge
@pytest.mark.postgres
class TestAsyncpgContract(UnitOfWorkContract):
    """The whole contract through asyncpg."""

    @pytest.fixture
    def uow(self, postgres_engine: Engine) -> UnitOfWork:
        return AsyncSqlAlchemyUnitOfWork(asyncpg_target(postgres_engine).engine()).sync
