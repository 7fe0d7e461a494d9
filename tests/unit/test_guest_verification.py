"""GuestService verification: R7 order, refusal audit, atomic consume, malformed input."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magiclink import (
    AccessDenied,
    AuditAction,
    BookingStatus,
    InvalidationReason,
    InvalidToken,
    MagicLinkError,
    StorageError,
    TokenExpiredOrUsed,
    VerifiedToken,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork, InjectedFault
from magiclink.testing.strategies import malformed_raw_tokens, non_string_values, raw_tokens
from tests.unit.harness import STUDENT, TTL, Harness, snapshot

Operation = Callable[[Harness, str], VerifiedToken]
OPERATIONS: list[Operation] = [
    lambda h, raw: h.guests.verify_token(raw),
    lambda h, raw: h.guests.consume_token(raw),
]
OPERATION_IDS = ["verify", "consume"]


@pytest.fixture(params=OPERATIONS, ids=OPERATION_IDS)
def operation(request: pytest.FixtureRequest) -> Operation:
    op: Operation = request.param
    return op


# ------------------------------------------------------------------------- acceptance


def test_r7_5_verify_returns_token_and_guest_and_never_changes_the_token() -> None:
    h = Harness.build()
    booking, raw = h.book()
    stored = h.token(raw)
    before = snapshot(h.uow)
    for _ in range(3):
        verified = h.guests.verify_token(raw)
        assert verified.token == stored
        assert verified.guest.normalized_email == STUDENT
        assert verified.token.booking_id == booking.id
    assert snapshot(h.uow) == before


def test_verify_of_refused_tokens_changes_no_token() -> None:
    h = Harness.build()
    _, raw = h.book()
    h.guests.consume_token(raw)
    used = h.token(raw)
    for _ in range(2):
        with pytest.raises(TokenExpiredOrUsed):
            h.guests.verify_token(raw)
    assert h.token(raw) == used


def test_consume_marks_used_once_and_second_use_is_refused() -> None:
    h = Harness.build()
    _, raw = h.book()
    h.clock.advance(timedelta(minutes=1))
    consumed = h.guests.consume_token(raw)
    assert consumed.token.used_at == h.clock.now()
    assert h.token(raw).used_at == h.clock.now()
    assert h.token(raw).invalidated is False
    with pytest.raises(TokenExpiredOrUsed, match=r"^Token expired or used$"):
        h.guests.consume_token(raw)
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(raw)


def test_r6_6_token_without_revision_skips_the_revision_check() -> None:
    h = Harness.build()
    booking, _ = h.book()
    legacy = h.store_token(STUDENT, booking_id=booking.id, booking_revision=None)
    h.update_booking(booking.id, revision=5)
    assert h.guests.verify_token(legacy).token.booking_revision is None


# ----------------------------------------------------------------- R7 order and audit


def _refusal_case(h: Harness, reason: str) -> str:
    """A known token that verification must refuse for `reason` (changed through the ports
    where the services would also have invalidated it, to reach the fail-closed checks)."""
    booking, raw = h.book()
    if reason == "blocked":
        h.guests.invalidate_tokens_by_booking_id(booking.id, InvalidationReason.MANUAL_REVOCATION)
        h.guests.block_guest(STUDENT)  # blocked beats invalidated
    elif reason == "invalidated":
        h.clock.advance(TTL)  # invalidated beats expired
        h.guests.invalidate_tokens_by_booking_id(booking.id, InvalidationReason.RATING_SUBMITTED)
    elif reason == "used":
        h.guests.consume_token(raw)
        h.clock.advance(TTL)  # used beats expired
    elif reason == "expired":
        h.update_booking(booking.id, status=BookingStatus.CANCELLED)
        h.clock.advance(TTL)  # expired beats booking_closed
    elif reason == "booking_closed":
        h.update_booking(booking.id, status=BookingStatus.NO_SHOW, revision=1)
    elif reason == "booking_rescheduled":
        h.update_booking(booking.id, revision=1)
    else:
        raw = h.store_token(STUDENT, booking_id=999_999, booking_revision=0)
    return raw


REFUSALS = [
    ("blocked", AccessDenied),
    ("invalidated", TokenExpiredOrUsed),
    ("used", TokenExpiredOrUsed),
    ("expired", TokenExpiredOrUsed),
    ("booking_closed", TokenExpiredOrUsed),
    ("booking_rescheduled", TokenExpiredOrUsed),
    ("booking_missing", TokenExpiredOrUsed),
]


@pytest.mark.parametrize(("reason", "error"), REFUSALS)
def test_r7_refused_known_token_writes_exactly_one_verify_token_audit(
    operation: Operation, reason: str, error: type[MagicLinkError]
) -> None:
    """R7 step order and R8: one VERIFY_TOKEN entry, success false, metadata reason."""
    h = Harness.build()
    raw = _refusal_case(h, reason)
    token = h.token(raw)
    guest = h.guests.get_guest(STUDENT)
    assert guest is not None
    audits_before = h.audit()
    with pytest.raises(error) as caught:
        operation(h, raw)
    assert type(caught.value) is error
    assert h.token(raw) == token  # refusal never changes the token
    audits_after = h.audit()
    assert len(audits_after) == len(audits_before) + 1
    entry = audits_after[0]
    assert entry.action == AuditAction.VERIFY_TOKEN
    assert entry.success is False
    assert entry.guest_id == guest.id
    assert entry.resource_id == str(token.booking_id)
    assert entry.metadata["reason"] == reason
    assert entry.metadata["token_id"] == token.id
    assert entry.created_at == h.clock.now()


def test_r7_1_unknown_well_formed_token_is_invalid_and_not_audited(operation: Operation) -> None:
    h = Harness.build()
    h.book()
    before = snapshot(h.uow)
    with pytest.raises(InvalidToken, match=r"^Invalid token$"):
        operation(h, "0" * 64)
    assert snapshot(h.uow) == before


def test_r7_inbox_link_refusal_audit_has_no_resource() -> None:
    h = Harness.build()
    raw = h.inbox().raw
    h.clock.advance(TTL)
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(raw)
    (entry,) = h.verify_audits()
    assert entry.resource_id is None
    assert entry.metadata["reason"] == "expired"


def test_r7_step_1_malformed_token_beats_everything() -> None:
    h = Harness.build()
    _, raw = h.book()
    h.guests.block_guest(STUDENT)
    with pytest.raises(InvalidToken):
        h.guests.verify_token(raw.upper())
    assert h.verify_audits() == []


def test_r7_2_blocked_guest_beats_dead_token_and_unblock_revives_nothing() -> None:
    """R7.2: a blocked guest gets `AccessDenied` first; §9.3: after unblock the link the
    block killed stays dead (it used to be revived)."""
    h = Harness.build()
    _, raw = h.book()
    h.guests.block_guest(STUDENT)
    with pytest.raises(AccessDenied, match=r"^Access denied$"):
        h.guests.verify_token(raw)
    h.guests.unblock_guest(STUDENT)
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(raw)


# ---------------------------------------------------------------------- bad raw tokens


@settings(max_examples=150)
@given(raw=malformed_raw_tokens(include_huge=False), consume=st.booleans())
def test_r7_1_malformed_raw_token_refused_without_any_repository_call(
    raw: str, consume: bool
) -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork(), count_begins=True, count_commits=True)
    h = Harness.build(faulty)
    with pytest.raises(InvalidToken) as caught:
        (h.guests.consume_token if consume else h.guests.verify_token)(raw)
    assert caught.value.code == "UNAUTHORIZED"
    assert faulty.calls == []


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "A" * 64,
        "\uff10" * 64,
        "a" * 63 + "\x00",
        "a" * 1_000_000,
        " " + "a" * 63,
    ],
    ids=["empty", "short", "long", "non_hex", "upper", "unicode", "nul", "1mb", "space"],
)
def test_r7_1_each_kind_of_malformed_token_is_refused_without_storage(
    operation: Operation, raw: str
) -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork(), count_begins=True)
    h = Harness.build(faulty)
    with pytest.raises(InvalidToken):
        operation(h, raw)
    assert faulty.calls == []


@settings(max_examples=50)
@given(value=non_string_values())
def test_r7_1_non_string_token_is_invalid_token_without_storage(value: object) -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork(), count_begins=True)
    h = Harness.build(faulty)
    with pytest.raises(InvalidToken):
        h.guests.verify_token(value)  # type: ignore[arg-type]
    assert faulty.calls == []


@settings(max_examples=50)
@given(raw=raw_tokens())
def test_r7_1_unknown_well_formed_token_makes_one_lookup(raw: str) -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    with pytest.raises(InvalidToken):
        h.guests.verify_token(raw)
    assert faulty.calls == ["tokens.lookup"]


# ------------------------------------------------------------------ consume under a race


def _race_once(contenders: int) -> None:
    h = Harness.build()
    _, raw = h.book()
    barrier = threading.Barrier(contenders)
    results: list[str] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        try:
            h.guests.consume_token(raw)
            outcome = "won"
        except TokenExpiredOrUsed:
            outcome = "lost"
        except Exception as error:  # pragma: no cover - reported by the assertion
            outcome = repr(error)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["lost"] * (contenders - 1) + ["won"]
    assert h.token(raw).used_at == h.clock.now()
    assert [e.metadata["reason"] for e in h.verify_audits()] == ["used"] * (contenders - 1)


def test_5_1_consume_raced_from_16_threads_has_exactly_one_winner() -> None:
    """SPEC §4 consume_token / §5.1, on the shared in-memory unit of work, 20 rounds."""
    for _round in range(20):
        _race_once(16)


# ----------------------------------------------------------------- errors and messages


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        ("InvalidToken", "UNAUTHORIZED", "Invalid token"),
        ("TokenExpiredOrUsed", "UNAUTHORIZED", "Token expired or used"),
        ("AccessDenied", "FORBIDDEN", "Access denied"),
        ("RateLimited", "TOO_MANY_REQUESTS", None),
        ("BookingNotFound", "NOT_FOUND", None),
        ("BookingClosed", "CONFLICT", None),
        ("DuplicateRating", "CONFLICT", None),
        ("InvalidInput", "BAD_REQUEST", None),
        ("StorageError", "INTERNAL", None),
    ],
)
def test_error_codes_and_messages(error: str, code: str, message: str | None) -> None:
    import magiclink

    cls = getattr(magiclink, error)
    instance = cls()
    assert isinstance(instance, magiclink.MagicLinkError)
    assert instance.code == code
    assert str(instance) == instance.message
    assert instance.message and "\n" not in instance.message
    if message is not None:
        assert instance.message == message
    custom = cls("custom words")
    assert str(custom) == custom.message == "custom words"


def test_storage_error_transient_flag() -> None:
    from magiclink import StorageError

    assert StorageError().transient is False
    assert StorageError("lost", transient=True).transient is True


# ------------------------------------------------------------------ storage failures


def test_refusal_stands_when_its_audit_entry_cannot_be_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fail closed: a dead link is refused even when the VERIFY_TOKEN write fails."""
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    _, raw = h.book()
    h.guests.consume_token(raw)
    faulty.arm(1, times=10, match="audit.add_many")
    with caplog.at_level(logging.ERROR, logger="magiclink"):
        with pytest.raises(TokenExpiredOrUsed):
            h.guests.verify_token(raw)
        with pytest.raises(TokenExpiredOrUsed):
            h.guests.consume_token(raw)
    assert faulty.failures == ["audit.add_many", "audit.add_many"]
    assert [r.__dict__.get("event") for r in caplog.records if r.levelno == logging.ERROR] == [
        "audit.write_failed",
        "audit.write_failed",
    ]
    faulty.disarm()
    assert h.verify_audits() == []


def test_consume_storage_failure_raises_storage_error_and_leaves_token_unused() -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    _, raw = h.book()
    faulty.arm(1, match="tokens.consume", error_factory=InjectedFault)
    with pytest.raises(StorageError):
        h.guests.consume_token(raw)
    faulty.disarm()
    assert h.token(raw).used_at is None
    assert h.guests.consume_token(raw).token.used_at == h.clock.now()
