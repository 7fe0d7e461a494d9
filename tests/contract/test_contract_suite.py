"""The contract suite itself: it covers every port method, it fails on broken adapters, and
it stays out of the way of `import magiclink`."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import attrs
import pytest

import magiclink.testing
from magiclink import DuplicateRating, Rating, StorageError
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import (
    AuditLog,
    BookingRepository,
    GuestRepository,
    IncidentRepository,
    InvalidationResult,
    RatingRepository,
    TokenRepository,
    Transaction,
    UnitOfWork,
)
from magiclink.testing import contract
from magiclink.testing.contract import MICRO, ContractBase, UnitOfWorkContract

PORTS: dict[str, type] = {
    "guests": GuestRepository,
    "bookings": BookingRepository,
    "tokens": TokenRepository,
    "ratings": RatingRepository,
    "incidents": IncidentRepository,
    "audit": AuditLog,
}


def _contract_source() -> str:
    modules = {inspect.getmodule(cls) for cls in UnitOfWorkContract.__mro__}
    return "\n".join(
        inspect.getsource(m) for m in modules if m and m.__name__.startswith("magiclink")
    )


def _abstract_methods(port: type) -> frozenset[str]:
    """The abstract method names ABCMeta recorded on a port class."""
    names: frozenset[str] = vars(port)["__abstractmethods__"]
    return names


@pytest.mark.parametrize(
    ("attribute", "method"),
    [(attr, name) for attr, port in PORTS.items() for name in sorted(_abstract_methods(port))],
)
def test_the_contract_calls_every_port_method(attribute: str, method: str) -> None:
    """SPEC §5.5: every abstract method of every repository port is exercised."""
    assert f"{attribute}.{method}(" in _contract_source()


@pytest.mark.parametrize("method", sorted(Transaction.__abstractmethods__))
def test_the_contract_calls_every_transaction_method(method: str) -> None:
    """commit, rollback and close are each called explicitly somewhere in the suite."""
    assert f"tx.{method}()" in _contract_source()


def test_every_contract_class_is_in_the_whole_suite() -> None:
    """`UnitOfWorkContract` includes each per-port contract exported by the module."""
    parts = [getattr(contract, name) for name in contract.__all__ if name.endswith("Contract")]
    assert all(issubclass(UnitOfWorkContract, part) for part in parts)
    assert len(parts) == 9


def test_make_uow_must_be_provided() -> None:
    """A subclass that says nothing about storage gets a clear error, not a silent pass."""
    with pytest.raises(NotImplementedError, match="make_uow"):
        ContractBase().make_uow()


def test_the_package_re_exports_the_contract_lazily() -> None:
    """`magiclink.testing.UnitOfWorkContract` is the contract module's class."""
    assert magiclink.testing.UnitOfWorkContract is UnitOfWorkContract
    with pytest.raises(AttributeError):
        magiclink.testing.NoSuchContract  # noqa: B018


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(out.split())


def test_import_magiclink_imports_neither_the_suite_nor_pytest() -> None:
    """The contract suite is a testing module: `import magiclink` never loads it."""
    loaded = _modules_after("import magiclink")
    assert "magiclink.testing" not in loaded
    assert "pytest" not in loaded


def test_import_magiclink_testing_does_not_import_pytest() -> None:
    """The package itself is light; pytest loads with the contract module only."""
    assert "pytest" not in _modules_after("import magiclink.testing")
    assert "pytest" in _modules_after("from magiclink.testing import UnitOfWorkContract")


# --- The suite fails on broken adapters --------------------------------------------------


class _Proxy:
    """Delegates to `inner`, except for the attributes given as overrides."""

    def __init__(self, inner: object, **overrides: Any) -> None:
        self._inner = inner
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_Port = TypeVar("_Port")


def _proxy(inner: _Port, **overrides: Any) -> _Port:
    """`inner` with some attributes overridden, typed as the port it stands in for."""
    return cast(_Port, _Proxy(inner, **overrides))


Mutation = Callable[["_MutantTransaction"], None]


class _MutantTransaction(Transaction):
    """An in-memory transaction whose ports may be swapped for broken ones."""

    def __init__(self, inner: Transaction, mutate: Mutation | None) -> None:
        self.inner = inner
        self.guests = inner.guests
        self.tokens = inner.tokens
        self.bookings = inner.bookings
        self.ratings = inner.ratings
        self.incidents = inner.incidents
        self.audit = inner.audit
        self.close_commits = False
        if mutate is not None:
            mutate(self)

    def commit(self) -> None:
        self.inner.commit()

    def rollback(self) -> None:
        self.inner.rollback()

    def close(self) -> None:
        if self.close_commits:
            self.inner.commit()
        self.inner.close()


class _MutantUnitOfWork(UnitOfWork):
    def __init__(self, mutate: Mutation | None) -> None:
        super().__init__()
        self._inner = InMemoryUnitOfWork()
        self._mutate = mutate

    def transaction(self, *, readonly: bool = False) -> Transaction:
        return _MutantTransaction(self._inner.transaction(readonly=readonly), self._mutate)


def _consume_late(tx: _MutantTransaction) -> None:
    inner = tx.inner.tokens
    tx.tokens = _proxy(inner, consume=lambda i, *, now: inner.consume(i, now=now - MICRO))


def _count_nothing(tx: _MutantTransaction) -> None:
    inner = tx.inner.tokens

    def invalidate_by_booking(booking_id: int, **kwargs: Any) -> InvalidationResult:
        inner.invalidate_by_booking(booking_id, **kwargs)
        return InvalidationResult(per_guest={})

    tx.tokens = _proxy(inner, invalidate_by_booking=invalidate_by_booking)


def _oldest_first(tx: _MutantTransaction) -> None:
    inner = tx.inner.audit
    tx.audit = _proxy(inner, list=lambda **kwargs: inner.list(**kwargs)[::-1])


def _close_commits(tx: _MutantTransaction) -> None:
    tx.close_commits = True


def _strict_slot(tx: _MutantTransaction) -> None:
    inner = tx.inner.guests

    def claim(guest_id: int, *, now: datetime, not_after: datetime) -> bool:
        return inner.claim_request_slot(guest_id, now=now, not_after=not_after - MICRO)

    tx.guests = _proxy(inner, claim_request_slot=claim)


def _naive_times(tx: _MutantTransaction) -> None:
    inner = tx.inner.bookings

    def get(booking_id: int, **kwargs: Any) -> Any:
        found = inner.get(booking_id, **kwargs)
        if found is None:
            return None
        return attrs.evolve(
            found,
            start_time=found.start_time.replace(tzinfo=None),
            end_time=found.end_time.replace(tzinfo=None),
        )

    tx.bookings = _proxy(inner, get=get)


def _duplicate_as_storage_error(tx: _MutantTransaction) -> None:
    inner = tx.inner.ratings

    def add(rating: Rating) -> Rating:
        try:
            return inner.add(rating)
        except DuplicateRating as error:
            raise StorageError("unique violation") from error

    tx.ratings = _proxy(inner, add=add)


MUTANTS: dict[str, tuple[Mutation, str]] = {
    "consume at expiry": (_consume_late, "test_consume_at_expiry_is_refused_r6_5"),
    "no per-guest counts": (_count_nothing, "test_invalidate_by_booking_counts_per_guest_r5_3"),
    "audit oldest first": (_oldest_first, "test_list_newest_first_then_by_id"),
    "close commits": (_close_commits, "test_leaving_without_commit_rolls_back"),
    "slot boundary refused": (_strict_slot, "test_claim_request_slot_at_the_boundary_is_allowed"),
    "naive times": (_naive_times, "test_times_come_back_aware_and_exact"),
    "foreign duplicate error": (
        _duplicate_as_storage_error,
        "test_second_rating_is_duplicate_rating_r3_4",
    ),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_the_contract_fails_a_broken_adapter(mutant: str) -> None:
    """Each planted bug fails its contract test, which passes on the same wrapper unbroken."""
    mutate, test_name = MUTANTS[mutant]
    suite = UnitOfWorkContract()
    getattr(suite, test_name)(_MutantUnitOfWork(None))
    with pytest.raises((AssertionError, StorageError)):
        getattr(suite, test_name)(_MutantUnitOfWork(mutate))
