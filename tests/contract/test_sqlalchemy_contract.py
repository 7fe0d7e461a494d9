"""The port contract suite on the SQLAlchemy adapter: SQLite file, PostgreSQL, MariaDB.

Each class overrides the contract's `uow` fixture, since the engine (with clean tables) comes
from a fixture of tests/databases.py. A missing server skips these tests, or fails them under
`CI=true`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import UnitOfWork
from magiclink.testing.contract import UnitOfWorkContract


class TestSqliteContract(UnitOfWorkContract):
    """`SqlAlchemyUnitOfWork` on a SQLite file passes the whole contract."""

    @pytest.fixture
    def uow(self, sqlite_engine: Engine) -> UnitOfWork:
        return SqlAlchemyUnitOfWork(sqlite_engine)


@pytest.mark.postgres
class TestPostgresContract(UnitOfWorkContract):
    """`SqlAlchemyUnitOfWork` on PostgreSQL passes the whole contract."""

    @pytest.fixture
    def uow(self, postgres_engine: Engine) -> UnitOfWork:
        return SqlAlchemyUnitOfWork(postgres_engine)


@pytest.mark.mariadb
class TestMariaDbContract(UnitOfWorkContract):
    """`SqlAlchemyUnitOfWork` on MariaDB passes the whole contract."""

    @pytest.fixture
    def uow(self, mariadb_engine: Engine) -> UnitOfWork:
        return SqlAlchemyUnitOfWork(mariadb_engine)
