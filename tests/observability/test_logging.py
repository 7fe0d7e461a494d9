"""Structured logs on logger `magiclink` (§7, R9.5): one event per outcome, same field names.

One scripted run of the real services on the in-memory adapter produces every event; the
tests then read the records as a host's handler would: attributes, a JSON rendering, levels.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Final

import attrs
import pytest

from magiclink import (
    Events,
    InvalidationReason,
    InvalidToken,
    RefusalReason,
    Settings,
    TokenExpiredOrUsed,
    generate_raw_token,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork

from .world import MENTOR, World, build, secrets_in

# The attributes every LogRecord has; whatever else a record carries came from `extra`.
STANDARD_ATTRIBUTES: Final = frozenset(
    logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None).__dict__
) | {"message", "asctime", "taskName"}

# The whole vocabulary of fields: a new spelling (`bookingId`, `duration`) fails the build.
FIELDS: Final = frozenset(
    {
        "event",
        "booking_id",
        "reason",
        "count",
        "duration_ms",
        "error_type",
        "error",
        "token_id",
        "guest_id",
        "path",
        "operation",
        "step",
        "incident_id",
    }
)

LEVELS: Final = {
    Events.TOKEN_ISSUED: logging.INFO,
    Events.TOKEN_CONSUMED: logging.INFO,
    Events.TOKEN_VERIFIED: logging.INFO,
    Events.TOKEN_UNKNOWN: logging.INFO,
    Events.INVALIDATION_SUCCEEDED: logging.INFO,
    Events.INVALIDATION_FAILED: logging.ERROR,
    Events.INVALIDATION_RETRIED: logging.WARNING,
    Events.VERIFY_REFUSED: logging.INFO,
    Events.REUSE_DETECTED: logging.WARNING,
    Events.LIFECYCLE_STEP_FAILED: logging.ERROR,
    Events.INCIDENT_BOOKING_UNKNOWN: logging.WARNING,
    Events.GUEST_BLOCKED: logging.INFO,
    Events.GUEST_UNBLOCKED: logging.INFO,
    Events.AUDIT_WRITE_FAILED: logging.ERROR,
    Events.STORAGE_RETRIED: logging.WARNING,
}

# The fields each event carries today (a superset is fine; a missing one fails).
REQUIRED: Final[dict[str, frozenset[str]]] = {
    Events.TOKEN_ISSUED: frozenset({"token_id", "guest_id", "booking_id", "path"}),
    Events.TOKEN_CONSUMED: frozenset({"token_id", "guest_id", "booking_id"}),
    Events.TOKEN_VERIFIED: frozenset({"token_id", "guest_id", "booking_id"}),
    Events.TOKEN_UNKNOWN: frozenset({"operation"}),
    Events.INVALIDATION_SUCCEEDED: frozenset({"booking_id", "reason", "count", "duration_ms"}),
    Events.INVALIDATION_FAILED: frozenset(
        {"booking_id", "reason", "count", "duration_ms", "error_type", "error"}
    ),
    Events.INVALIDATION_RETRIED: frozenset({"error_type", "error"}),
    Events.VERIFY_REFUSED: frozenset({"token_id", "guest_id", "booking_id", "reason", "operation"}),
    Events.REUSE_DETECTED: frozenset({"token_id", "guest_id", "booking_id", "reason", "operation"}),
    Events.LIFECYCLE_STEP_FAILED: frozenset(
        {"step", "booking_id", "reason", "duration_ms", "error_type", "error"}
    ),
    Events.INCIDENT_BOOKING_UNKNOWN: frozenset({"reason", "count", "incident_id"}),
    Events.GUEST_BLOCKED: frozenset({"guest_id", "count"}),
    Events.GUEST_UNBLOCKED: frozenset({"guest_id"}),
    Events.AUDIT_WRITE_FAILED: frozenset(
        {"token_id", "booking_id", "reason", "error_type", "error"}
    ),
    Events.STORAGE_RETRIED: frozenset({"error_type", "error"}),
}

REASONS: Final = frozenset(InvalidationReason) | frozenset(RefusalReason)


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record carries beyond the standard LogRecord attributes."""
    return {k: v for k, v in record.__dict__.items() if k not in STANDARD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """What a host's JSON log pipeline does: level, logger, message and the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **extras(record),
        }
        return json.dumps(document, allow_nan=False)


@attrs.define
class Run:
    """What the scripted run left behind."""

    world: World
    records: list[logging.LogRecord]
    raws: list[str]
    booking_ids: dict[str, int]

    def of(self, event: str) -> list[logging.LogRecord]:
        return [r for r in self.records if getattr(r, "event", None) == event]

    def one(self, event: str) -> logging.LogRecord:
        found = self.of(event)
        assert found, f"no {event} record"
        return found[0]


def scripted_run(caplog: pytest.LogCaptureFixture) -> Run:
    """Drive the services through every logged outcome, capturing `magiclink` at DEBUG."""
    caplog.set_level(logging.DEBUG, logger="magiclink")
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    world = build(uow=faulty, settings=Settings(request_interval=timedelta(0)))
    raws: list[str] = []
    ids: dict[str, int] = {}

    # token.issued, token.consumed, token.reuse_detected
    ids["reused"] = world.book_id("ada@example.com")
    reused = world.last_raw()
    world.guests.consume_token(reused)
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.consume_token(reused)

    # token_invalidation.succeeded, then token.verify_refused (invalidated)
    ids["cancelled"] = world.book_id("bob@example.com")
    raws.append(world.guests.request_inbox_link("bob@example.com", ids["cancelled"]).raw)
    world.bookings.cancel_session(ids["cancelled"], "mentor is ill", "mentor", MENTOR)
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.verify_token(world.raw_tokens()[-1])

    # token_invalidation.retried, token_invalidation.failed, lifecycle.step_failed
    ids["failed"] = world.book_id("cy@example.com")
    faulty.arm(1, match="tokens.invalidate_by_booking", transient=True, times=2)
    world.bookings.cancel_session(ids["failed"], "", "student", MENTOR)

    # audit.write_failed: the refusal of a dead link stands though its audit write fails
    faulty.arm(1, match="audit.add_many")
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.verify_token(world.raw_tokens()[-1])

    # storage.retried: a transient failure outside invalidation, healed by the retry;
    # token.verified (§9.7): the healed verify succeeds
    faulty.arm(1, match="tokens.lookup", transient=True)
    ids["retried"] = world.book_id("dee@example.com")
    world.guests.verify_token(world.last_raw())
    faulty.disarm()

    # token.unknown (§9.7): a well-formed token that matches nothing, by verify and consume
    unknown = generate_raw_token()
    raws.append(unknown)
    for present in (world.guests.verify_token, world.guests.consume_token):
        with pytest.raises(InvalidToken):
            present(unknown)

    # incident.booking_unknown
    world.quality.create_incident("profile-7", "no-such-uid", "other", "")

    # guest.blocked, guest.unblocked (issue 16.4, §9.3)
    world.guests.block_guest("eve@example.com")
    world.guests.unblock_guest("eve@example.com")

    return Run(
        world=world,
        records=[r for r in caplog.records if r.name.startswith("magiclink")],
        raws=raws + world.raw_tokens(),
        booking_ids=ids,
    )


@pytest.fixture
def run(caplog: pytest.LogCaptureFixture) -> Run:
    return scripted_run(caplog)


# ------------------------------------------------------------------------------ the events


def test_every_event_name_is_covered_here() -> None:
    """A new event in `Events` must get a level and its fields in this file (and the docs)."""
    names = {v for k, v in vars(Events).items() if not k.startswith("_")}
    assert names == set(LEVELS) == set(REQUIRED)


@pytest.mark.parametrize("event", sorted(LEVELS))
def test_each_event_is_emitted_at_its_level(run: Run, event: str) -> None:
    records = run.of(event)
    assert records, f"the scripted run produced no {event}"
    assert {r.levelno for r in records} == {LEVELS[event]}
    assert {r.name for r in records} == {"magiclink"}


@pytest.mark.parametrize("event", sorted(REQUIRED))
def test_each_event_carries_its_fields_as_attributes(run: Run, event: str) -> None:
    for record in run.of(event):
        fields = extras(record)
        assert fields["event"] == event
        missing = REQUIRED[event] - fields.keys()
        assert not missing, f"{event} lacks {sorted(missing)}"


def test_every_field_has_a_known_name_and_type(run: Run) -> None:
    """The same spelling and type everywhere, so one dashboard query fits every event."""
    events = [r for r in run.records if hasattr(r, "event") and r.name == "magiclink"]
    assert len(events) >= len(LEVELS)
    for record in events:
        fields = extras(record)
        assert fields.keys() <= FIELDS, sorted(fields.keys() - FIELDS)
        for name in ("booking_id", "token_id", "guest_id", "incident_id"):
            if fields.get(name) is not None:
                assert type(fields[name]) is int, (fields["event"], name)
        if "count" in fields and fields["count"] is not None:
            assert type(fields["count"]) is int
            assert fields["count"] >= 0
        if "duration_ms" in fields:
            assert isinstance(fields["duration_ms"], float)
            assert fields["duration_ms"] >= 0
        if "error_type" in fields:
            assert fields["error_type"].isidentifier()
            assert isinstance(fields["error"], str)
            assert fields["error"]
        if "reason" in fields and fields["event"] != Events.LIFECYCLE_STEP_FAILED:
            assert fields["reason"] in REASONS


def test_message_starts_with_the_event_and_repeats_the_fields(run: Run) -> None:
    """Plain-text handlers still show everything: `event key=value ...`."""
    for record in run.records:
        if not hasattr(record, "event") or record.name != "magiclink":
            continue
        message = record.getMessage()
        assert message.split(" ", 1)[0] == record.event
        for key, value in extras(record).items():
            if key != "event" and value is not None:
                assert f"{key}={value}" in message


def test_successful_invalidation_record(run: Run) -> None:
    succeeded = [
        r
        for r in run.of(Events.INVALIDATION_SUCCEEDED)
        if r.booking_id == run.booking_ids["cancelled"]  # type: ignore[attr-defined]
    ]
    assert len(succeeded) == 1
    fields = extras(succeeded[0])
    assert fields["reason"] == "booking_cancelled"
    assert fields["count"] == 2  # the booking link and the inbox link
    assert fields["duration_ms"] >= 0


def test_failure_log_says_what_which_booking_why_and_how_long(run: Run) -> None:
    """R9.5, on both the invalidation's own record and the lifecycle step's."""
    booking_id = run.booking_ids["failed"]
    failed = run.one(Events.INVALIDATION_FAILED)
    step = run.one(Events.LIFECYCLE_STEP_FAILED)
    for record in (failed, step):
        fields = extras(record)
        assert fields["booking_id"] == booking_id  # which booking
        assert fields["reason"] == "booking_cancelled"  # which lifecycle event
        assert fields["error_type"] == "StorageError"  # why
        assert "tokens.invalidate_by_booking" in fields["error"]
        assert fields["duration_ms"] >= 0  # how long
        message = record.getMessage()
        assert f"booking_id={booking_id}" in message
        assert "error_type=StorageError" in message
        assert "duration_ms=" in message
    assert extras(step)["step"] == "invalidate"  # what failed
    assert extras(failed)["count"] == 0
    retried = run.one(Events.INVALIDATION_RETRIED)
    assert extras(retried)["error_type"] == "StorageError"
    assert run.records.index(retried) < run.records.index(failed) < run.records.index(step)


def test_reuse_is_a_warning_with_the_token_id(run: Run) -> None:
    record = run.one(Events.REUSE_DETECTED)
    fields = extras(record)
    assert fields["reason"] == "used"
    assert fields["booking_id"] == run.booking_ids["reused"]
    assert fields["operation"] == "consume"
    assert isinstance(fields["token_id"], int)


def test_a_successful_verify_is_logged_with_its_token_id(run: Run) -> None:
    """§9.7: verify writes nothing but logs `token.verified` (INFO) with the token's ids."""
    [record] = run.of(Events.TOKEN_VERIFIED)
    fields = extras(record)
    assert fields["booking_id"] == run.booking_ids["retried"]
    assert isinstance(fields["token_id"], int)
    assert isinstance(fields["guest_id"], int)


def test_an_unknown_token_is_logged_without_token_material(run: Run) -> None:
    """§9.7: a well-formed unknown token logs `token.unknown` (INFO) with only the
    operation: no raw token, no hash, no id."""
    records = run.of(Events.TOKEN_UNKNOWN)
    assert [extras(r) for r in records] == [
        {"event": Events.TOKEN_UNKNOWN, "operation": "verify"},
        {"event": Events.TOKEN_UNKNOWN, "operation": "consume"},
    ]
    assert [r.getMessage() for r in records] == [
        "token.unknown operation=verify",
        "token.unknown operation=consume",
    ]


def test_refusal_record_names_its_reason(run: Run) -> None:
    reasons = {extras(r)["reason"] for r in run.of(Events.VERIFY_REFUSED)}
    assert "invalidated" in reasons


def test_json_formatter_renders_every_field(run: Run) -> None:
    formatter = JsonFormatter()
    for record in run.records:
        if not hasattr(record, "event"):
            continue
        document = json.loads(formatter.format(record))
        assert document["event"] == record.event
        assert document["logger"].startswith("magiclink")
        for key, value in extras(record).items():
            assert document[key] == value
    failed = json.loads(formatter.format(run.one(Events.INVALIDATION_FAILED)))
    assert failed["level"] == "ERROR"
    assert set(failed) >= {"booking_id", "reason", "count", "duration_ms", "error_type", "error"}
    assert isinstance(failed["duration_ms"], float)


def test_no_record_holds_a_raw_token_or_its_hash(run: Run) -> None:
    secrets = list(secrets_in(run.raws))
    assert len(secrets) >= 10
    formatter = JsonFormatter()
    for record in run.records:
        rendered = formatter.format(record) + repr(record.__dict__)
        for secret in secrets:
            assert secret not in rendered


# --------------------------------------------------------------- the library configures nothing


def iter_magiclink_loggers() -> Iterator[logging.Logger]:
    for name, logger in logging.root.manager.loggerDict.items():
        if (name == "magiclink" or name.startswith("magiclink.")) and isinstance(
            logger, logging.Logger
        ):
            yield logger


def library_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers of `logger` minus those this test suite attaches (tests/conftest.py)."""
    return [h for h in logger.handlers if not type(h).__module__.startswith(("tests.", "_pytest"))]


def test_only_a_null_handler_is_installed(run: Run) -> None:
    library = logging.getLogger("magiclink")
    assert [type(h) for h in library_handlers(library)] == [logging.NullHandler]
    assert library.propagate is True
    for logger in iter_magiclink_loggers():
        if logger is not library:
            assert library_handlers(logger) == [], logger.name
            assert logger.propagate is True


def test_importing_and_running_touches_no_global_logging_state() -> None:
    """In a fresh interpreter: root logger untouched, nothing written when the host logs nothing."""
    script = textwrap.dedent(
        """
        import logging, sys
        root = logging.getLogger()
        before = (list(root.handlers), root.level, logging.lastResort, logging.root.manager.disable)

        import magiclink
        import magiclink.adapters.memory
        import magiclink.adapters.prometheus
        from datetime import timedelta
        from magiclink import BookingService, GuestService, Requester
        from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork, ManualClock
        from magiclink.adapters.memory import InMemoryMetrics
        from magiclink.testing.faults import FaultyUnitOfWork
        from datetime import UTC, datetime

        faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
        clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
        guests = GuestService(faulty, clock=clock, metrics=InMemoryMetrics())
        bookings = BookingService(faulty, guests, notifier=InMemoryNotifier())
        booking = bookings.book_session(7, "ada@example.com", clock.now() + timedelta(days=1))
        faulty.arm(1, match="tokens.invalidate_by_booking", transient=True, times=2)
        bookings.cancel_session(booking.booking.id, "", "mentor", Requester(user_id=7))

        after = (list(root.handlers), root.level, logging.lastResort, logging.root.manager.disable)
        assert before == after, (before, after)
        assert logging.getLogger("magiclink").level == logging.NOTSET
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    # An ERROR was logged (the failed invalidation) yet nothing reached stderr: the
    # library's NullHandler keeps logging's last-resort handler quiet.
    assert done.stderr == ""


def test_records_propagate_to_the_host_configuration(caplog: pytest.LogCaptureFixture) -> None:
    """With the host's handler on the root logger, the events arrive (caplog is such one)."""
    caplog.set_level(logging.INFO)
    world = build()
    world.book_id()
    assert Events.TOKEN_ISSUED in [getattr(r, "event", None) for r in caplog.records]


def test_nothing_is_formatted_when_the_level_is_disabled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="magiclink")
    world = build()
    booking_id = world.book_id()
    world.bookings.cancel_session(booking_id, "", "mentor", MENTOR)
    assert [r for r in caplog.records if r.name == "magiclink"] == []
