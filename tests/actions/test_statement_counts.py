"""Issue 13 item 8: each link action sends a constant number of statements, whatever the
number of other links of the booking (1 or 50) and of their guests (1 or 10).

The counts (data statements, transaction control left out; `StatementLog.count`) are
printed per dialect — run `pytest -s tests/actions/test_statement_counts.py` to list them
for the note. Measured at b97f646:

| action     | SQLite | PostgreSQL | MariaDB |
|------------|--------|------------|---------|
| cancel     | 7      | 6          | 7       |
| reschedule | 11     | 10         | 11      |
| rate       | 8      | 7          | 8       |
| report     | 7      | 6          | 7       |
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from tests.actions._race_worker import act
from tests.databases import count_statements
from tests.unit.harness import Harness

ACTIONS = ("cancel", "reschedule", "rate", "report")
SHAPES = ((1, 1), (50, 1), (10, 10), (50, 10))
"""(other tokens of the booking, guests holding them)."""


def statements(engine: Engine, action: str, others: int, guests: int) -> int:
    """Statements `action` sends for a booking with `others` more links among `guests`."""
    world = Harness.build(SqlAlchemyUnitOfWork(engine))
    email = f"{action}-{others}-{guests}@example.com"
    booking, raw = world.book(email)
    holders = [email] + [f"g{n}-{booking.id}@example.com" for n in range(1, guests)]
    for n in range(others):
        world.store_token(holders[n % guests], booking_id=booking.id)
    world.clock.advance(timedelta(seconds=1))
    with count_statements(engine) as log:
        act(world, action, raw)
    return log.count


@pytest.mark.parametrize("action", ACTIONS)
def test_issue13_8_statements_per_link_action_are_constant(any_engine: Engine, action: str) -> None:
    """The action's statement count is the same for 1 or 50 other links, 1 or 10 guests."""
    counts = {shape: statements(any_engine, action, *shape) for shape in SHAPES}
    print(f"\n{any_engine.dialect.name} {action}: {counts}")
    assert len(set(counts.values())) == 1, counts
