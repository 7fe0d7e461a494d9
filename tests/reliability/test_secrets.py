"""Secrets: a raw token lives only in the mailed link, and is compared by hash lookup only.

After a full lifecycle on a SQLite file (booking, inbox links, verification, consumption,
reuse, blocking, rescheduling, rating, incident, cancellation, no-show, storage failures),
no raw token appears in any stored row, in the database file itself, in any statement
parameter sent to the database, in any log record, or in the message, args or repr of any
exception raised (nor in their causes). The database holds `sha256(raw)`; presenting the
hash, or the raw token with one character changed, is `InvalidToken`; and swapping the
stored hash makes another raw token the valid one: verification is a lookup of the hash.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from sqlalchemy import Engine, create_engine, event, update

from magiclink import (
    AccessDenied,
    IncidentType,
    InvalidToken,
    MagicLinkError,
    Requester,
    StorageError,
    TokenExpiredOrUsed,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata
from magiclink.ports import UnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork
from tests.reliability.world import (
    MENTOR,
    PROFILE,
    STUDENT,
    T0,
    World,
    mentor,
    sha256_hex,
    student,
    table_rows,
)

TOKENS = metadata.tables["magiclink_tokens"]


class Lifecycle:
    """Runs a full lifecycle, keeping every raw token issued and every error raised."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.raws: list[str] = []
        self.errors: list[BaseException] = []

    def refused(self, call: Callable[[], Any], expected: type[MagicLinkError]) -> None:
        with pytest.raises(expected) as caught:
            call()
        self.errors.append(caught.value)

    def run(self) -> None:
        w = self.world
        seed = w.seed()
        self.raws += [*seed.links, seed.bystander_link]
        w.guests.verify_token(seed.live[0])
        self.refused(lambda: w.guests.consume_token(seed.links[2]), TokenExpiredOrUsed)  # reuse
        w.clock.advance(timedelta(minutes=1))
        self.raws.append(w.guests.request_inbox_link("walk-in@example.com").raw)
        almost = seed.live[0][:-1] + ("0" if seed.live[0][-1] != "0" else "1")
        self.refused(lambda: w.guests.verify_token(almost), InvalidToken)
        w.guests.block_guest(STUDENT)
        self.refused(lambda: w.guests.verify_token(seed.live[0]), AccessDenied)
        w.guests.unblock_guest(STUDENT)
        moved = w.bookings.reschedule_session(seed.booking.id, T0 + timedelta(days=2), student())
        assert moved.link_sent
        self.raws.append(w.last_raw())
        self.refused(lambda: w.guests.verify_token(seed.live[0]), TokenExpiredOrUsed)
        w.ratings.create_rating(seed.booking.id, PROFILE, 5, "thanks")
        w.quality.create_incident(PROFILE, seed.booking.uid, IncidentType.OTHER, "x")
        w.bookings.cancel_session(seed.bystander.id, "ill", "mentor", Requester(user_id=MENTOR + 1))
        self.refused(lambda: w.guests.consume_token(seed.bystander_link), TokenExpiredOrUsed)
        booking, raw = w.book("late@example.com")
        self.raws.append(raw)
        w.bookings.mark_session_as_no_show(booking.id, mentor())
        self.refused(lambda: w.guests.consume_token(raw), TokenExpiredOrUsed)
        # Storage failures while a raw token is in hand.
        faulty = FaultyUnitOfWork(w.uow, match="tokens.lookup", fail_at=1)
        with_faults = World.build(faulty, start=w.clock.now())
        fresh, fresh_raw = w.book("fresh@example.com")
        self.raws.append(fresh_raw)
        self.refused(lambda: with_faults.guests.consume_token(fresh_raw), StorageError)
        assert w.guests.verify_token(fresh_raw).token.booking_id == fresh.id


def chain(error: BaseException) -> Iterator[BaseException]:
    """The error, its cause and its context, recursively."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]


def renderings(error: BaseException) -> str:
    return f"{error!s} {error!r} {error.args!r} {getattr(error, 'message', '')}"


@pytest.fixture
def parameters(sqlite_engine: Engine) -> Iterator[list[str]]:
    """Every statement's parameters, as sent to the database."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(repr(args[3]))

    event.listen(sqlite_engine, "before_cursor_execute", record)
    yield sent
    event.remove(sqlite_engine, "before_cursor_execute", record)


def test_no_raw_token_in_storage_logs_statements_or_errors(
    sqlite_engine: Engine,
    parameters: list[str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The raw token is never stored, sent to the database, logged or raised."""
    caplog.set_level(logging.DEBUG, logger="magiclink")
    world = World.build(SqlAlchemyUnitOfWork(sqlite_engine))
    lifecycle = Lifecycle(world)
    lifecycle.run()
    lifecycle.errors.append(locked_database_error(world, sqlite_engine, lifecycle.raws))
    raws = lifecycle.raws
    assert len(set(raws)) == len(raws) >= 9
    assert all(len(raw) == 64 and set(raw) <= set(string.hexdigits.lower()) for raw in raws)

    # Storage: every column of every row, then the bytes of the database file itself.
    stored = repr(table_rows(sqlite_engine))
    sqlite_engine.dispose()
    files = b"".join(p.read_bytes() for p in tmp_path.glob("magiclink.db*"))
    hashes = {row.token_hash for row in world_tokens(sqlite_engine)}
    for raw in raws:
        assert raw not in stored
        assert raw.encode("ascii") not in files
        assert sha256_hex(raw) in hashes  # what is stored instead
    # Statements: the database never even sees a raw token (lookups send the hash).
    sent = "\n".join(parameters)
    assert parameters
    assert not [raw for raw in raws if raw in sent]
    assert sha256_hex(raws[0]) in sent
    # Logs: message and every attribute of every record.
    assert caplog.records
    for record in caplog.records:
        text = f"{record.getMessage()} {record.__dict__!r}"
        assert not [raw for raw in raws if raw in text], record.getMessage()
    # Errors: message, args and repr, down the whole chain; the hash stays out of the
    # library's own messages too.
    assert len(lifecycle.errors) >= 8
    for error in lifecycle.errors:
        for link in chain(error):
            assert not [raw for raw in raws if raw in renderings(link)], repr(link)
        assert not [raw for raw in raws if sha256_hex(raw) in renderings(error)], repr(error)
    # What a host might log: the mailed message's and the issued token's repr.
    for message in world.sent:
        assert not [raw for raw in raws if raw in repr(message)]
    issued = world.guests.request_inbox_link("repr@example.com")
    assert issued.raw not in repr(issued)


def locked_database_error(world: World, engine: Engine, raws: list[str]) -> StorageError:
    """A real driver error while a raw token is being consumed: the database is locked."""
    impatient = create_engine(engine.url, connect_args={"timeout": 0.05})
    try:
        with engine.connect() as holder:
            holder.exec_driver_sql("BEGIN IMMEDIATE")
            blocked = World.build(SqlAlchemyUnitOfWork(impatient), start=world.clock.now())
            with pytest.raises(StorageError) as caught:
                blocked.guests.consume_token(raws[-1])
            holder.exec_driver_sql("ROLLBACK")
    finally:
        impatient.dispose()
    assert caught.value.transient is True
    assert caught.value.__cause__ is not None  # the driver's error, chained
    return caught.value


def world_tokens(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(TOKENS.select()))


# --- comparison by hash lookup ----------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def uow(request: pytest.FixtureRequest) -> UnitOfWork:
    if request.param == "memory":
        return InMemoryUnitOfWork()
    return SqlAlchemyUnitOfWork(request.getfixturevalue("sqlite_engine"))


def test_verification_is_a_lookup_of_the_sha256_of_the_raw_token(uow: UnitOfWork) -> None:
    """The stored value is sha256(raw); neither it nor a near miss opens anything."""
    world = World.build(uow)
    seed = world.seed()
    raw = seed.live[0]
    verified = world.guests.verify_token(raw)
    assert verified.token.token_hash == sha256_hex(raw)

    near_misses = [raw[:i] + ("0" if raw[i] != "0" else "1") + raw[i + 1 :] for i in (0, 31, 63)]
    for presented in [*near_misses, sha256_hex(raw), verified.token.token_hash]:
        with pytest.raises(InvalidToken):
            world.guests.verify_token(presented)
        with pytest.raises(InvalidToken):
            world.guests.consume_token(presented)
    for malformed in [raw.upper(), raw[:-1], raw + "0", f" {raw}", raw.encode()]:
        with pytest.raises(InvalidToken):
            world.guests.verify_token(malformed)  # type: ignore[arg-type]
    assert world.guests.verify_token(raw).token.id == verified.token.id  # untouched

    # Swap the stored hash for the hash of another string: that string becomes the link,
    # and the original raw token is unknown. Nothing but the hash is compared.
    other = "ab" * 32
    replace_hash(world, verified.token.id, sha256_hex(other))
    assert world.guests.verify_token(other).token.id == verified.token.id
    with pytest.raises(InvalidToken):
        world.guests.verify_token(raw)


def replace_hash(world: World, token_id: int, token_hash: str) -> None:
    uow = world.uow
    if isinstance(uow, SqlAlchemyUnitOfWork):
        with uow.engine.begin() as connection:
            connection.execute(
                update(TOKENS).where(TOKENS.c.id == token_id).values(token_hash=token_hash)
            )
        return
    assert isinstance(uow, InMemoryUnitOfWork)
    store = uow._store
    token = store.tokens[token_id]
    del store.token_by_hash[token.token_hash]
    store.token_by_hash[token_hash] = token_id
    store.tokens[token_id] = attrs.evolve(token, token_hash=token_hash)
