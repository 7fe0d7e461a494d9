"""§8.3 under real concurrency on PostgreSQL: of racers presenting one link to a link action
exactly one acts and the others get `TokenExpiredOrUsed` (threads, 20 rounds; spawned
processes, 2 rounds of each action); two different links of one booking racing: at most one action lands."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import pytest
from sqlalchemy import Engine, func, select

from magiclink import AuditAction, BookingClosed, BookingStatus, DuplicateRating
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata
from tests.actions._race_worker import outcome, racer
from tests.databases import new_postgres_engine
from tests.unit.harness import Harness

pytestmark = pytest.mark.postgres

RACERS: Final = 16
THREAD_ROUNDS: Final = 20
PROCESS_ROUNDS: Final = 20  # the racers are spawned once; a round costs one race
PAIR_ROUNDS: Final = 10
TIMEOUT: Final = 60.0
ACTIONS: Final = ("cancel", "reschedule", "rate", "report")


@pytest.fixture
def racing_engine(postgres_engine: Engine) -> Iterator[Engine]:
    """The test schema through a pool with a connection per racer."""
    engine = new_postgres_engine(postgres_engine.url, pool_size=RACERS, max_overflow=4)
    try:
        yield engine
    finally:
        engine.dispose()


def race(racers: int, world: Harness, action: str, links: tuple[str, ...]) -> list[str]:
    """`racers` threads released together, racer i presenting `links[i % len(links)]` to
    `action`; each outcome."""
    barrier = threading.Barrier(racers, timeout=TIMEOUT)

    def run(i: int) -> str:
        barrier.wait()
        return outcome(world, action, links[i % len(links)])

    with ThreadPoolExecutor(max_workers=racers) as pool:
        return list(pool.map(run, range(racers)))


def actions_stored(world: Harness, engine: Engine, action: str, booking_id: int) -> int:
    """How many times `action` landed on the booking, read from storage."""
    booking = world.booking(booking_id)
    if action == "cancel":
        return int(booking.status is BookingStatus.CANCELLED)
    if action == "reschedule":
        return booking.revision
    table = metadata.tables["magiclink_ratings" if action == "rate" else "magiclink_incidents"]
    with engine.connect() as connection:
        query = select(func.count()).select_from(table).where(table.c.booking_id == booking_id)
        return int(connection.execute(query).scalar_one())


def assert_one_winner(
    world: Harness, engine: Engine, action: str, booking_id: int, results: list[str]
) -> None:
    assert results.count("won") == 1, (action, results)
    assert results.count("used") == len(results) - 1, (action, results)
    assert actions_stored(world, engine, action, booking_id) == 1, action
    assert len(world.audit(AuditAction.CONSUME_TOKEN, booking_id=booking_id)) == 1


@pytest.mark.parametrize("action", ACTIONS)
def test_r8_3_sixteen_threads_one_link_one_action_every_round(
    racing_engine: Engine, action: str
) -> None:
    """§8.3: 16 threads present one link to the action, 20 rounds: one success and one
    stored action per round, 15 `TokenExpiredOrUsed`."""
    world = Harness.build(SqlAlchemyUnitOfWork(racing_engine))
    for round_ in range(THREAD_ROUNDS):
        booking, raw = world.book(f"t{round_}@example.com")
        results = race(RACERS, world, action, (raw,))
        assert_one_winner(world, racing_engine, action, booking.id, results)


@pytest.mark.slow
def test_r8_3_sixteen_processes_one_link_one_action_every_round(
    postgres_engine: Engine,
) -> None:
    """§8.3 with 16 spawned processes (own engine and pool each, as a multi-worker server):
    each of the four actions, 20 rounds: one success, one stored action, 15 refusals."""
    world = Harness.build(SqlAlchemyUnitOfWork(postgres_engine))
    rounds: list[tuple[str, str]] = []
    bookings: list[int] = []
    for action in ACTIONS:
        for round_ in range(PROCESS_ROUNDS):
            booking, raw = world.book(f"p-{action}-{round_}@example.com")
            rounds.append((action, raw))
            bookings.append(booking.id)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(RACERS, timeout=TIMEOUT)
    results: Any = context.Queue()
    url = postgres_engine.url.render_as_string(hide_password=False)
    now = world.clock.now()
    processes = [
        context.Process(target=racer, args=(url, now, rounds, barrier, results, worker))
        for worker in range(RACERS)
    ]
    for process in processes:
        process.start()
    collected: list[tuple[int, int, str]] = []
    try:
        while len(collected) < RACERS * len(rounds):
            item = results.get(timeout=TIMEOUT * 2)
            assert item[0] >= 0, item
            collected.append(item)
    except queue.Empty:  # pragma: no cover - a hung racer
        pytest.fail(f"racers stalled after {len(collected)} results")
    finally:
        for process in processes:
            process.join(TIMEOUT)
            if process.is_alive():  # pragma: no cover
                process.kill()
    for number, ((action, _), booking_id) in enumerate(zip(rounds, bookings, strict=True)):
        outcomes = [result for n, _, result in collected if n == number]
        assert len(outcomes) == RACERS
        assert_one_winner(world, postgres_engine, action, booking_id, outcomes)


# --- Two different links of one booking ------------------------------------------------------

REFUSED: Final = {
    "cancel": {"used", BookingClosed.__name__},
    "reschedule": {"used", BookingClosed.__name__},
    "rate": {"used", DuplicateRating.__name__},
    "report": {"used", BookingClosed.__name__},
}


@pytest.mark.parametrize(
    "action",
    [
        pytest.param("cancel", id="cancel"),
        pytest.param("reschedule", id="reschedule"),
        pytest.param("rate", id="rate"),
        pytest.param("report", id="report"),
    ],
)
def test_r8_3_two_links_of_one_booking_at_most_one_action_lands(
    racing_engine: Engine, action: str
) -> None:
    """§8.3: the booking's link and a second link of the same booking race the action, 10
    rounds: exactly one success and one stored action per round."""
    results = two_link_rounds(racing_engine, action)
    assert [(won, stored) for won, stored, _ in results] == [(1, 1)] * PAIR_ROUNDS, results


@pytest.mark.parametrize(
    "action",
    [
        pytest.param("cancel", id="cancel"),
        pytest.param("reschedule", id="reschedule"),
        pytest.param("rate", id="rate"),
        pytest.param("report", id="report"),
    ],
)
def test_r8_3_the_losing_link_sees_the_booking_changed(racing_engine: Engine, action: str) -> None:
    """§8.3: the loser of two links racing gets `TokenExpiredOrUsed` or the action's own
    refusal (`BookingClosed`, `DuplicateRating`), never a storage error."""
    results = two_link_rounds(racing_engine, action)
    refusals = {refusal for _, _, losers in results for refusal in losers}
    assert refusals <= REFUSED[action], results


def two_link_rounds(engine: Engine, action: str) -> list[tuple[int, int, list[str]]]:
    """Per round: how many won, how many actions are stored, the losers' outcomes."""
    world = Harness.build(SqlAlchemyUnitOfWork(engine))
    rounds: list[tuple[int, int, list[str]]] = []
    for round_ in range(PAIR_ROUNDS):
        email = f"two{round_}@example.com"
        booking, first = world.book(email)
        second = world.inbox(email, booking.id).raw
        results = race(2, world, action, (first, second))
        stored = actions_stored(world, engine, action, booking.id)
        losers = [r for r in results if r != "won"]
        rounds.append((results.count("won"), stored, losers))
    return rounds
