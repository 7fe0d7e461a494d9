"""SPEC §6 properties P1-P9, at least 100 examples each, on in-memory and on SQLite.

The checks live in `magiclink.testing.properties` (shipped, so a host runs them on its own
adapter); here each runs on every built-in backend. Storage is created inside each example.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from magiclink.testing.properties import PROPERTIES
from tests.properties.backends import BACKENDS, Backend

EXAMPLES = 100

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


def _run(number: str, backend: Backend, args: dict[str, Any]) -> None:
    with backend.session() as factory:
        PROPERTIES[number].check(factory, **args)


@settings(max_examples=EXAMPLES)
@given(args=PROPERTIES["P1"].arguments)
def test_p1_lifecycle_event_invalidates_every_token(backend: Backend, args: dict[str, Any]) -> None:
    """P1 (R1.1-R1.3, R2.1, R3.1, R4.1): every lifecycle event kills all the booking's tokens."""
    _run("P1", backend, args)


@settings(max_examples=EXAMPLES)
@given(args=PROPERTIES["P2"].arguments)
def test_p2_invalidated_token_has_flag_reason_and_used_at(
    backend: Backend, args: dict[str, Any]
) -> None:
    """P2 (R1.4): invalidated, its reason, used_at = invalidation or earlier consumption time."""
    _run("P2", backend, args)


@settings(max_examples=EXAMPLES)
@given(args=PROPERTIES["P3"].arguments)
def test_p3_dead_token_refused_as_expired_or_used(backend: Backend, args: dict[str, Any]) -> None:
    """P3 (R1.5, R2.4, R6.5, R7.1-R7.4): invalidated, used or expired → Token expired or used."""
    _run("P3", backend, args)


@settings(max_examples=EXAMPLES)
@given(args=PROPERTIES["P4"].arguments)
def test_p4_live_token_accepted_with_token_and_guest(
    backend: Backend, args: dict[str, Any]
) -> None:
    """P4 (R6.2, R7.5): a live token verifies, unchanged, with its guest; consume accepts it."""
    _run("P4", backend, args)


@settings(max_examples=EXAMPLES)
@given(args=PROPERTIES["P5"].arguments)
def test_p5_batch_invalidation_counts_and_touches_no_other_booking(
    backend: Backend, args: dict[str, Any]
) -> None:
    """P5 (R5.2, R5.3): all the booking's tokens invalidated, count returned, others intact."""
    _run("P5", backend, args)


@settings(max_examples=EXAMPLES)
@given(args=PROPERTIES["P6"].arguments)
def test_p6_reschedule_leaves_exactly_one_new_valid_token(
    backend: Backend, args: dict[str, Any]
) -> None:
    """P6 (R2.1-R2.5): earlier tokens invalidated, exactly one new valid token, standard TTL."""
    _run("P6", backend, args)


@settings(max_examples=EXAMPLES)
@given(args=PROPERTIES["P7"].arguments)
def test_p7_every_creation_path_expires_exactly_ttl_after_creation(
    backend: Backend, args: dict[str, Any]
) -> None:
    """P7 (R2.5, R6.4): every path's token expires exactly TTL after creation."""
    _run("P7", backend, args)


@settings(max_examples=EXAMPLES)
@given(args=PROPERTIES["P8"].arguments)
def test_p8_invalidation_audited_once_per_affected_guest(
    backend: Backend, args: dict[str, Any]
) -> None:
    """P8 (R5.5, R8.1-R8.5): one INVALIDATE_TOKEN entry per affected guest, complete."""
    _run("P8", backend, args)


@settings(max_examples=EXAMPLES)
@given(args=PROPERTIES["P9"].arguments)
def test_p9_no_tokens_or_second_invalidation_returns_zero_changes_nothing(
    backend: Backend, args: dict[str, Any]
) -> None:
    """P9 (R5.4, R9.3): no tokens, unknown booking or a second pass → 0, nothing changes."""
    _run("P9", backend, args)
