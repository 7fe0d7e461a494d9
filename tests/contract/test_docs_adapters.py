"""docs/adapters.md runs as written, and the adapter it builds passes the contract suite.

The doc's ```python blocks are executed in order in one namespace (once, at import, so that
its contract class can be collected here); then the doc's own `TestHostAdapter` runs on a
SQLite file, and the same adapter runs the contract on PostgreSQL and MariaDB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData

from magiclink.ports import UnitOfWork
from magiclink.testing.contract import UnitOfWorkContract
from tests.test_readme import python_blocks

DOC = Path(__file__).resolve().parents[2] / "docs" / "adapters.md"


def run_doc() -> dict[str, Any]:
    """Execute every python block of the doc, in order, in one fresh namespace."""
    namespace: dict[str, Any] = {"__name__": "docs_adapters"}
    for block in python_blocks(DOC):
        exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


DOC_NAMESPACE = run_doc()


def test_the_doc_has_the_promised_parts() -> None:
    """The walkthrough defines the repository, the unit of work and the contract class."""
    assert len(python_blocks(DOC)) >= 6
    for name in (
        "AppointmentBookingRepository",
        "AppointmentTokenRepository",
        "HostUnitOfWork",
        "TestHostAdapter",
    ):
        assert name in DOC_NAMESPACE
    assert issubclass(DOC_NAMESPACE["TestHostAdapter"], UnitOfWorkContract)


def test_every_block_runs_again_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blocks run as-is a second time, in a new namespace and directory."""
    monkeypatch.chdir(tmp_path)
    namespace = run_doc()
    assert namespace["booking"].uid


# The doc's own contract class, on a SQLite file per test (its `uow` fixture).
TestDocsAdapterOnSqlite = DOC_NAMESPACE["TestHostAdapter"]


def _host_unit_of_work(engine: Engine) -> UnitOfWork:
    """The doc's unit of work on a shared server: the host table created once, emptied."""
    host_metadata: MetaData = DOC_NAMESPACE["host_metadata"]
    host_metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(DOC_NAMESPACE["appointments"].delete())
    uow: UnitOfWork = DOC_NAMESPACE["HostUnitOfWork"](engine)
    return uow


@pytest.mark.postgres
class TestDocsAdapterOnPostgres(UnitOfWorkContract):
    """The doc's adapter passes the contract on PostgreSQL."""

    @pytest.fixture
    def uow(self, postgres_engine: Engine) -> UnitOfWork:
        return _host_unit_of_work(postgres_engine)


@pytest.mark.mariadb
class TestDocsAdapterOnMariaDb(UnitOfWorkContract):
    """The doc's adapter passes the contract on MariaDB."""

    @pytest.fixture
    def uow(self, mariadb_engine: Engine) -> UnitOfWork:
        return _host_unit_of_work(mariadb_engine)
