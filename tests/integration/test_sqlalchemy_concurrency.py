"""§5.1 under real concurrency: of racing consumers exactly one wins, every time; racing
first requests of a new e-mail create exactly one guest and claim exactly one slot.

Threads race on every dialect; separate processes (spawned, each with its own engine and
pool, as in a multi-worker web server) race on PostgreSQL.
"""

from __future__ import annotations

import functools
import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Final, TypeVar

import pytest
from sqlalchemy import Engine, create_engine, func, select

from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata
from tests.integration.seed import NOW, seed_booking

RACERS: Final = 16
CONSUME_ROUNDS: Final = 20
GUEST_ROUNDS: Final = 10
BARRIER_TIMEOUT: Final = 60.0
INTERVAL: Final = timedelta(seconds=60)

T = TypeVar("T")


def consume_once(uow: SqlAlchemyUnitOfWork, token_id: int) -> bool:
    """One racer's whole request: consume the token and commit."""
    with uow.transaction() as tx:
        won = tx.tokens.consume(token_id, now=NOW)
        tx.commit()
    return won


def first_request(uow: SqlAlchemyUnitOfWork, email: str) -> tuple[int, bool, bool]:
    """One racer's first link request: find or create the guest, claim the rate-limit slot."""
    with uow.transaction() as tx:
        guest, created = tx.guests.get_or_create(email, now=NOW, last_request_at=None)
        claimed = tx.guests.claim_request_slot(guest.id, now=NOW, not_after=NOW - INTERVAL)
        tx.commit()
    return guest.id, created, claimed


@contextmanager
def racing_engine(engine: Engine) -> Iterator[Engine]:
    """An engine on the same database with one pooled connection per racer."""
    racing = create_engine(engine.url, pool_size=RACERS, max_overflow=0)
    try:
        yield racing
    finally:
        racing.dispose()


def race_threads(work: Callable[[int], T]) -> list[T]:
    """Run `work(i)` in RACERS threads released together; every result, or the first error."""
    barrier = threading.Barrier(RACERS, timeout=BARRIER_TIMEOUT)
    results: list[Any] = [None] * RACERS
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BARRIER_TIMEOUT * 2)
    if errors:
        raise errors[0]
    return results


def assert_one_guest_per_email(engine: Engine, emails: list[str]) -> None:
    guests = metadata.tables["magiclink_guests"]
    with engine.connect() as connection:
        rows = connection.execute(
            select(guests.c.normalized_email, func.count())
            .where(guests.c.normalized_email.in_(emails))
            .group_by(guests.c.normalized_email)
        ).all()
    assert sorted(rows) == sorted((email, 1) for email in emails)


def check_guest_round(results: list[tuple[int, bool, bool]]) -> None:
    assert len({guest_id for guest_id, _, _ in results}) == 1
    assert sum(created for _, created, _ in results) == 1
    assert sum(claimed for _, _, claimed in results) == 1


def _consume_racer(uow: SqlAlchemyUnitOfWork, token_id: int, _racer: int) -> bool:
    return consume_once(uow, token_id)


def _first_request_racer(
    uow: SqlAlchemyUnitOfWork, email: str, _racer: int
) -> tuple[int, bool, bool]:
    return first_request(uow, email)


def test_consume_race_threads_exactly_one_winner(any_engine: Engine) -> None:
    """§5.1: 16 threads consume one token, 20 rounds: exactly one True each round."""
    seeded = seed_booking(SqlAlchemyUnitOfWork(any_engine), tokens=CONSUME_ROUNDS)
    with racing_engine(any_engine) as engine:
        uow = SqlAlchemyUnitOfWork(engine)
        for token in seeded.tokens:
            wins = race_threads(functools.partial(_consume_racer, uow, token.id))
            assert wins.count(True) == 1, wins


def test_first_request_race_threads_one_guest_one_slot(any_engine: Engine) -> None:
    """R6/§5.1: 16 threads ask for the same new e-mail: one guest row, one slot claimed."""
    emails = [f"race-{n}@example.com" for n in range(GUEST_ROUNDS)]
    with racing_engine(any_engine) as engine:
        uow = SqlAlchemyUnitOfWork(engine)
        for email in emails:
            check_guest_round(race_threads(functools.partial(_first_request_racer, uow, email)))
    assert_one_guest_per_email(any_engine, emails)


# --- Separate processes ----------------------------------------------------------------------


def _racer_process(
    url: str,
    token_ids: list[int],
    emails: list[str],
    barrier: Any,
    results: Any,
    worker: int,
) -> None:
    """A racer in its own interpreter: own engine, own pool, same database."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        uow = SqlAlchemyUnitOfWork(engine)
        for round_ in range(len(token_ids)):
            barrier.wait()
            results.put(("consume", round_, worker, consume_once(uow, token_ids[round_])))
        for round_, email in enumerate(emails):
            barrier.wait()
            results.put(("guest", round_, worker, first_request(uow, email)))
    except BaseException as error:
        barrier.abort()
        results.put(("error", -1, worker, f"{type(error).__name__}: {error}"))
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_races_across_processes_on_postgres(postgres_engine: Engine) -> None:
    """§5.1 with 16 spawned processes: one consumer wins per round (20 rounds), and one
    guest and one claimed slot per new e-mail (10 rounds)."""
    seeded = seed_booking(SqlAlchemyUnitOfWork(postgres_engine), tokens=CONSUME_ROUNDS)
    token_ids = [token.id for token in seeded.tokens]
    emails = [f"process-race-{n}@example.com" for n in range(GUEST_ROUNDS)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(RACERS, timeout=BARRIER_TIMEOUT)
    results = context.Queue()
    url = postgres_engine.url.render_as_string(hide_password=False)
    processes = [
        context.Process(
            target=_racer_process, args=(url, token_ids, emails, barrier, results, worker)
        )
        for worker in range(RACERS)
    ]
    for process in processes:
        process.start()
    expected = RACERS * (CONSUME_ROUNDS + GUEST_ROUNDS)
    collected: list[tuple[str, int, int, Any]] = []
    try:
        while len(collected) < expected:
            item = results.get(timeout=BARRIER_TIMEOUT * 2)
            assert item[0] != "error", item
            collected.append(item)
    except queue.Empty:  # pragma: no cover - a hung racer
        pytest.fail(f"racers stalled after {len(collected)} of {expected} results")
    finally:
        for process in processes:
            process.join(BARRIER_TIMEOUT)
            if process.is_alive():  # pragma: no cover
                process.kill()
    for round_ in range(CONSUME_ROUNDS):
        wins = [r for kind, n, _, r in collected if kind == "consume" and n == round_]
        assert len(wins) == RACERS and wins.count(True) == 1, (round_, wins)
    for round_ in range(GUEST_ROUNDS):
        check_guest_round([r for kind, n, _, r in collected if kind == "guest" and n == round_])
    assert_one_guest_per_email(postgres_engine, emails)
