"""InMemoryMetrics: totals, nearest-rank percentiles, label filtering and the snapshot."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from magiclink.adapters.memory import InMemoryMetrics, InMemoryUnitOfWork
from magiclink.ports import MetricNames, Metrics
from magiclink.testing.faults import FaultyUnitOfWork

from .world import MENTOR, build

N = MetricNames


def test_is_a_metrics_port() -> None:
    assert isinstance(InMemoryMetrics(), Metrics)


def test_count_sums_every_label_set_that_includes_the_filter() -> None:
    metrics = InMemoryMetrics()
    metrics.increment(
        N.INVALIDATIONS, labels={"reason": "booking_cancelled", "outcome": "succeeded"}
    )
    metrics.increment(
        N.INVALIDATIONS, 2, labels={"reason": "booking_cancelled", "outcome": "failed"}
    )
    metrics.increment(
        N.INVALIDATIONS, 4, labels={"reason": "rating_submitted", "outcome": "succeeded"}
    )

    assert metrics.count(N.INVALIDATIONS) == 7
    assert metrics.count(N.INVALIDATIONS, reason="booking_cancelled") == 3
    assert metrics.count(N.INVALIDATIONS, outcome="succeeded") == 5
    assert metrics.count(N.INVALIDATIONS, reason="booking_cancelled", outcome="failed") == 2
    assert metrics.count(N.INVALIDATIONS, reason="superseded") == 0
    assert metrics.count(N.INVALIDATIONS, tenant="acme") == 0
    assert metrics.count("magiclink_never_recorded_total") == 0


def test_unlabelled_increments_and_default_amount() -> None:
    metrics = InMemoryMetrics()
    metrics.increment("custom_total")
    metrics.increment("custom_total")
    metrics.increment("custom_total", 0.5)
    assert metrics.count("custom_total") == 2.5
    assert metrics.snapshot() == {"custom_total": {"": 2.5}}


def test_nearest_rank_percentiles_on_one_to_a_hundred() -> None:
    metrics = InMemoryMetrics()
    for value in reversed(range(1, 101)):  # order of arrival must not matter
        metrics.observe(N.INVALIDATION_LATENCY, float(value), labels={"reason": "r"})
    assert metrics.percentile(N.INVALIDATION_LATENCY, 50) == 50
    assert metrics.percentile(N.INVALIDATION_LATENCY, 95) == 95
    assert metrics.percentile(N.INVALIDATION_LATENCY, 99) == 99
    assert metrics.percentile(N.INVALIDATION_LATENCY, 100) == 100
    assert metrics.summary(N.INVALIDATION_LATENCY) == {
        "count": 100.0,
        "p50": 50.0,
        "p95": 95.0,
        "p99": 99.0,
    }


@pytest.mark.parametrize(
    ("q", "expected"),
    # The worked example of the nearest-rank method: ordinal rank = ceil(q/100 * N).
    [(0, 15), (5, 15), (30, 20), (40, 20), (50, 35), (51, 35), (61, 40), (95, 50), (100, 50)],
)
def test_nearest_rank_on_five_values(q: float, expected: float) -> None:
    metrics = InMemoryMetrics()
    for value in (35, 20, 50, 40, 15):
        metrics.observe("sample", value)
    assert metrics.percentile("sample", q) == expected


def test_percentiles_of_nothing_are_none() -> None:
    metrics = InMemoryMetrics()
    assert metrics.percentile(N.INVALIDATION_LATENCY, 99) is None
    assert metrics.summary(N.INVALIDATION_LATENCY) == {
        "count": 0.0,
        "p50": None,
        "p95": None,
        "p99": None,
    }


def test_one_observation_is_every_percentile() -> None:
    metrics = InMemoryMetrics()
    metrics.observe("sample", 0.25)
    assert metrics.summary("sample") == {"count": 1.0, "p50": 0.25, "p95": 0.25, "p99": 0.25}


def test_values_and_percentiles_filter_by_labels() -> None:
    metrics = InMemoryMetrics()
    for value in (1.0, 2.0, 3.0):
        metrics.observe(N.TOKENS_INVALIDATED, value, labels={"reason": "booking_cancelled"})
    metrics.observe(N.TOKENS_INVALIDATED, 100.0, labels={"reason": "superseded"})

    assert sorted(metrics.values(N.TOKENS_INVALIDATED)) == [1.0, 2.0, 3.0, 100.0]
    assert metrics.values(N.TOKENS_INVALIDATED, reason="superseded") == [100.0]
    assert metrics.percentile(N.TOKENS_INVALIDATED, 99, reason="booking_cancelled") == 3.0
    assert metrics.percentile(N.TOKENS_INVALIDATED, 99) == 100.0
    assert metrics.values(N.TOKENS_INVALIDATED, reason="nope") == []


def test_snapshot_renders_label_sets_and_is_a_copy() -> None:
    metrics = InMemoryMetrics()
    metrics.increment(
        N.INVALIDATIONS, labels={"reason": "booking_cancelled", "outcome": "succeeded"}
    )
    metrics.increment(
        N.INVALIDATIONS, labels={"outcome": "succeeded", "reason": "booking_cancelled"}
    )
    metrics.increment(N.TOKENS_ISSUED, labels={"path": "inbox"})
    metrics.observe(N.INVALIDATION_LATENCY, 0.01, labels={"reason": "booking_cancelled"})

    snapshot = metrics.snapshot()
    assert snapshot == {
        # Label order does not split a series; keys are rendered sorted.
        N.INVALIDATIONS: {"outcome=succeeded,reason=booking_cancelled": 2.0},
        N.TOKENS_ISSUED: {"path=inbox": 1.0},
    }
    snapshot[N.TOKENS_ISSUED]["path=inbox"] = 99.0
    metrics.increment(N.TOKENS_ISSUED, labels={"path": "inbox"})
    assert metrics.count(N.TOKENS_ISSUED) == 2
    assert metrics.snapshot()[N.TOKENS_ISSUED] == {"path=inbox": 2.0}


def test_labels_given_are_copied_not_kept() -> None:
    metrics = InMemoryMetrics()
    labels = {"path": "inbox"}
    metrics.increment(N.TOKENS_ISSUED, labels=labels)
    labels["path"] = "booking"
    assert metrics.count(N.TOKENS_ISSUED, path="inbox") == 1
    assert metrics.count(N.TOKENS_ISSUED, path="booking") == 0


def test_concurrent_recording_loses_nothing() -> None:
    metrics = InMemoryMetrics()

    def work() -> None:
        for i in range(250):
            metrics.increment(
                N.VERIFICATIONS, labels={"operation": "verify", "outcome": "accepted"}
            )
            metrics.observe(N.INVALIDATION_LATENCY, float(i))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert metrics.count(N.VERIFICATIONS) == 1000
    assert len(metrics.values(N.INVALIDATION_LATENCY)) == 1000


def test_services_feed_the_recorder() -> None:
    """What §7 asks of the recorder after a real lifecycle: outcomes, latency, tokens, issues."""
    metrics = InMemoryMetrics()
    world = build(metrics)
    for email in ("ada@example.com", "bob@example.com", "cy@example.com"):
        booking_id = world.book_id(email)
        world.bookings.cancel_session(booking_id, "", "mentor", MENTOR)
    moved = world.book_id("dee@example.com")
    world.bookings.reschedule_session(moved, world.clock.now() + timedelta(days=3), MENTOR)

    assert metrics.count(N.INVALIDATIONS, outcome="succeeded") == 4
    assert metrics.count(N.INVALIDATIONS, reason="booking_cancelled") == 3
    latency = metrics.summary(N.INVALIDATION_LATENCY, reason="booking_cancelled")
    assert latency["count"] == 3
    assert latency["p50"] is not None and latency["p99"] is not None
    assert 0 <= latency["p50"] <= latency["p99"]
    assert metrics.values(N.TOKENS_INVALIDATED, reason="booking_cancelled") == [1.0, 1.0, 1.0]
    assert metrics.count(N.TOKENS_ISSUED, path="booking") == 4
    assert metrics.count(N.TOKENS_ISSUED, path="reschedule") == 1
    assert metrics.snapshot()[N.INVALIDATIONS] == {
        "outcome=succeeded,reason=booking_cancelled": 3.0,
        "outcome=succeeded,reason=booking_rescheduled": 1.0,
    }


def test_failed_invalidation_in_the_recorder() -> None:
    metrics = InMemoryMetrics()
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    world = build(metrics, uow=faulty)
    booking_id = world.book_id()
    faulty.arm(1, match="tokens.invalidate_by_booking")  # not transient: no retry

    world.ratings.create_rating(booking_id, "profile-7", 4)

    assert metrics.count(N.INVALIDATION_FAILURES, reason="rating_submitted") == 1
    assert metrics.count(N.INVALIDATION_RETRIES) == 0
    assert metrics.count(N.INVALIDATIONS, reason="rating_submitted", outcome="failed") == 1
    assert metrics.count(N.LIFECYCLE_STEP_FAILURES, step="invalidate") == 1
    assert metrics.values(N.INVALIDATION_LATENCY) == []
