"""Operation ids, the exact key of every `landed` check (issue 12.2), are unique per call:
across calls, threads and forked processes (which share one database).

Observed through the public records: each service call's audit entry carries its id.
"""

from __future__ import annotations

import multiprocessing
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from magiclink import GuestService, Settings
from magiclink.testing import World


def _guests() -> GuestService:
    settings = Settings(request_interval=timedelta(0), max_links_per_hour=None)
    return World.build(settings=settings).services.guests


def _operation_id_of_a_call(guests: GuestService) -> str:
    """The id of one invalidation call (its `INVALIDATE_TOKEN` entry's), via the public API."""
    issued = guests.request_inbox_link("ada@example.com")
    assert guests.invalidate_token(issued.token_id, "manual_revocation")
    entry = guests.audit_trail(guest_id=issued.guest_id, limit=1)[0]
    assert entry.action == "INVALIDATE_TOKEN" and entry.operation_id is not None
    return entry.operation_id


def test_ids_are_32_hex_digits_and_unique_across_threads() -> None:
    """400 calls on 4 threads: 400 ids, each fitting the 32-character column."""

    def ids(_: int) -> list[str]:
        guests = _guests()
        return [_operation_id_of_a_call(guests) for _ in range(100)]

    with ThreadPoolExecutor(4) as pool:
        every = [i for batch in pool.map(ids, range(4)) for i in batch]
    assert len(set(every)) == len(every) == 400
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in every)


def _child(conn: multiprocessing.connection.Connection) -> None:  # pragma: no cover - child
    conn.send(_operation_id_of_a_call(_guests()))
    conn.close()


def test_a_forked_child_never_repeats_its_parents_next_id() -> None:
    """A fork copies the process's id state; the child draws a new prefix, so the id it
    takes next is not the one the parent takes next (without that they were equal)."""
    _operation_id_of_a_call(_guests())
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_child, args=(theirs,))
    child.start()
    child_id = ours.recv()
    child.join(timeout=30)
    parent_id = _operation_id_of_a_call(_guests())
    assert child.exitcode == 0
    assert child_id != parent_id
    assert child_id[:16] != parent_id[:16]  # a new prefix, not a lucky counter
