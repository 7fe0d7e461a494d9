"""The test tools shipped in `magiclink.testing`: fault injection and strategies."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magiclink import GuestService, InvalidInput, InvalidToken, StorageError, normalize_email
from magiclink.adapters.memory import InMemoryUnitOfWork, ManualClock
from magiclink.ports import (
    AuditLog,
    BookingRepository,
    GuestRepository,
    IncidentRepository,
    RatingRepository,
    TokenRepository,
    Transaction,
    UnitOfWork,
)
from magiclink.testing.faults import FaultyUnitOfWork, InjectedFault
from magiclink.testing.strategies import (
    aware_datetimes,
    email_variants,
    emails,
    invalid_emails,
    malformed_raw_tokens,
    naive_datetimes,
    raw_tokens,
)
from tests.unit.harness import STUDENT, Harness


def test_faulty_unit_of_work_proxies_implement_the_ports() -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    assert isinstance(faulty, UnitOfWork)
    with faulty.transaction() as tx:
        assert isinstance(tx, Transaction)
        assert isinstance(tx.guests, GuestRepository)
        assert isinstance(tx.tokens, TokenRepository)
        assert isinstance(tx.bookings, BookingRepository)
        assert isinstance(tx.ratings, RatingRepository)
        assert isinstance(tx.incidents, IncidentRepository)
        assert isinstance(tx.audit, AuditLog)
        assert tx.tokens.get(1) is None
    assert faulty.calls == ["tokens.get"]


def test_faulty_unit_of_work_counts_and_fails_the_kth_call_times_times() -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork(), fail_at=2, times=2, transient=True)
    with faulty.transaction() as tx:
        tx.tokens.get(1)
        for _ in range(2):
            with pytest.raises(StorageError) as caught:
                tx.guests.get(1)
            assert caught.value.transient is True
        assert tx.bookings.get(1) is None
    assert faulty.calls == ["tokens.get", "guests.get", "guests.get", "bookings.get"]
    assert faulty.failures == ["guests.get", "guests.get"]


def test_faulty_unit_of_work_counts_commits_and_begins_when_asked() -> None:
    faulty = FaultyUnitOfWork(
        InMemoryUnitOfWork(), count_commits=True, count_begins=True, fail_at=3
    )
    h = Harness.build(faulty)
    with pytest.raises(StorageError):
        h.guests.block_guest(STUDENT)  # transaction, get_or_create, set_blocked(fails)...
    assert faulty.calls[:3] == ["transaction", "guests.get_or_create", "guests.set_blocked"]
    faulty.disarm()
    assert h.guests.get_guest(STUDENT) is None  # the failed transaction rolled back
    faulty.clear_calls()
    h.guests.block_guest(STUDENT)
    assert faulty.calls == [
        "transaction",
        "guests.get_or_create",
        "guests.set_blocked",
        "tokens.invalidate_all_live",
        "audit.add_many",
        "commit",
    ]


def test_faulty_unit_of_work_failing_commit_rolls_back() -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork(), count_commits=True)
    h = Harness.build(faulty)
    faulty.arm(1, match="commit")
    with pytest.raises(StorageError):
        h.guests.block_guest(STUDENT)
    faulty.disarm()
    assert h.guests.get_guest(STUDENT) is None


def test_faulty_unit_of_work_custom_error_and_match() -> None:
    faulty = FaultyUnitOfWork(
        InMemoryUnitOfWork(),
        fail_at=1,
        match={"tokens.lookup"},
        error_factory=InjectedFault,
    )
    with faulty.transaction() as tx:
        tx.guests.get(1)
        with pytest.raises(InjectedFault, match=r"^tokens\.lookup$"):
            tx.tokens.lookup("x")
        assert tx.tokens.lookup("x") is None


@pytest.mark.parametrize(("fail_at", "times"), [(0, 1), (1, 0)])
def test_faulty_unit_of_work_refuses_bad_aim(fail_at: int, times: int) -> None:
    with pytest.raises(ValueError):
        FaultyUnitOfWork(InMemoryUnitOfWork(), fail_at=fail_at, times=times)


def is_well_formed(raw: str) -> bool:
    """The library's own verdict: a well-formed token is looked up in storage, a malformed
    one is refused as `InvalidToken` before any storage call (SPEC R7 step 1)."""
    probe = FaultyUnitOfWork(InMemoryUnitOfWork(), count_begins=True)
    with pytest.raises(InvalidToken):  # unknown, or malformed: the same refusal
        GuestService(probe).verify_token(raw)
    return probe.calls != []


@settings(max_examples=200)
@given(raw=raw_tokens())
def test_raw_tokens_are_well_formed(raw: str) -> None:
    assert is_well_formed(raw)


@settings(max_examples=300)
@given(raw=malformed_raw_tokens())
def test_malformed_raw_tokens_are_not_well_formed(raw: str) -> None:
    assert not is_well_formed(raw)


@settings(max_examples=200)
@given(pair=emails().flatmap(lambda e: st.tuples(st.just(e), email_variants(e))))
def test_emails_are_normalized_and_variants_normalize_back(pair: tuple[str, str]) -> None:
    email, variant = pair
    assert normalize_email(email) == email
    assert normalize_email(variant) == email


@settings(max_examples=200)
@given(email=invalid_emails())
def test_invalid_emails_are_refused(email: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_email(email)


@settings(max_examples=100)
@given(aware=aware_datetimes(), naive=naive_datetimes())
def test_datetime_strategies(aware: datetime, naive: datetime) -> None:
    """Every time the library takes must be timezone-aware: `ManualClock` takes the aware
    ones and refuses the naive ones with `InvalidInput`, as every service does."""
    assert ManualClock(aware).now() == aware
    with pytest.raises(InvalidInput):
        ManualClock(naive)
