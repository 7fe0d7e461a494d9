"""The transaction runner: one retry of a transient fault, and no blind retry of a commit
whose outcome is unknown (R9.4; the lost-acknowledgement case of tests/reliability)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from magiclink import StorageError, rerun, run_in_transaction
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import NewAuditEntry, Transaction
from magiclink.testing.faults import FaultyUnitOfWork

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _write(calls: list[int]) -> Callable[[Transaction], int]:
    def work(tx: Transaction) -> int:
        calls.append(1)
        entry = NewAuditEntry(None, "test", "WRITE", None, True, {}, NOW)
        tx.audit.add_many([entry])
        return len(calls)

    return work


def _entries(uow: InMemoryUnitOfWork) -> int:
    with uow.transaction(readonly=True) as tx:
        return len(tx.audit.list(limit=100))


def _failing_commit(inner: InMemoryUnitOfWork, *, transient: bool = True) -> FaultyUnitOfWork:
    return FaultyUnitOfWork(
        inner, fail_at=1, transient=transient, match="commit", count_commits=True
    )


def test_a_transient_fault_in_the_work_is_retried_exactly_once() -> None:
    inner = InMemoryUnitOfWork()
    faulty = FaultyUnitOfWork(inner, fail_at=1, transient=True, match="audit.add_many")
    calls: list[int] = []
    assert run_in_transaction(faulty, _write(calls)) == 2
    assert _entries(inner) == 1


def test_a_second_transient_fault_gives_up() -> None:
    inner = InMemoryUnitOfWork()
    faulty = FaultyUnitOfWork(inner, fail_at=1, times=2, transient=True, match="audit.add_many")
    with pytest.raises(StorageError) as raised:
        run_in_transaction(faulty, _write([]))
    assert raised.value.transient and _entries(inner) == 0


def test_a_failed_commit_of_a_write_is_not_retried_blindly() -> None:
    """Without a `landed` check the outcome is unknown: raise, never run the work twice."""
    calls: list[int] = []
    with pytest.raises(StorageError):
        run_in_transaction(_failing_commit(InMemoryUnitOfWork()), _write(calls))
    assert calls == [1]


def test_a_failed_commit_returns_what_landed_says_landed() -> None:
    calls: list[int] = []
    result = run_in_transaction(
        _failing_commit(InMemoryUnitOfWork()),
        _write(calls),
        landed=lambda tx: 42,
    )
    assert (result, calls) == (42, [1])


def test_a_failed_commit_that_did_not_land_runs_the_work_again() -> None:
    inner = InMemoryUnitOfWork()
    calls: list[int] = []
    result = run_in_transaction(_failing_commit(inner), _write(calls), landed=rerun)
    assert (result, calls) == (2, [1, 1])
    assert _entries(inner) == 1  # the failed commit was rolled back in memory


def test_a_failed_read_only_commit_is_simply_retried() -> None:
    calls: list[int] = []

    def read(tx: Transaction) -> int:
        calls.append(1)
        return len(tx.audit.list(limit=1))

    assert run_in_transaction(_failing_commit(InMemoryUnitOfWork()), read, readonly=True) == 0
    assert calls == [1, 1]


def test_a_permanent_commit_failure_is_raised_at_once() -> None:
    calls: list[int] = []
    with pytest.raises(StorageError) as raised:
        run_in_transaction(
            _failing_commit(InMemoryUnitOfWork(), transient=False),
            _write(calls),
            landed=rerun,
        )
    assert not raised.value.transient and calls == [1]
