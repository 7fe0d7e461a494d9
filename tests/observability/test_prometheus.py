"""PrometheusMetrics: what real services record, read back from the rendered registry."""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from magiclink import (
    AccessDenied,
    InvalidToken,
    Settings,
    TokenExpiredOrUsed,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.prometheus import (
    COUNT_BUCKETS,
    LABELS,
    LATENCY_BUCKETS,
    PrometheusMetrics,
)
from magiclink.ports import COUNTERS, OBSERVATIONS, MetricNames, Metrics
from magiclink.testing.faults import FaultyUnitOfWork

from .world import MENTOR, SYSTEM, World, build

N = MetricNames


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def prom(registry: CollectorRegistry) -> PrometheusMetrics:
    return PrometheusMetrics(registry)


def value(registry: CollectorRegistry, sample: str, **labels: str) -> float:
    """A sample's value; 0.0 when the series was never touched."""
    found = registry.get_sample_value(sample, labels)
    return 0.0 if found is None else found


def bucket(registry: CollectorRegistry, name: str, le: float, **labels: str) -> float:
    return value(registry, f"{name}_bucket", le=str(float(le)), **labels)


# ---------------------------------------------------------------------- the adapter itself


def test_is_a_metrics_port(prom: PrometheusMetrics) -> None:
    assert isinstance(prom, Metrics)


def test_every_stable_name_has_a_fixed_label_set() -> None:
    """A name added to MetricNames without labels here would be exported without labels."""
    assert set(LABELS) == COUNTERS | OBSERVATIONS
    assert LABELS[N.INVALIDATIONS] == ("reason", "outcome")
    assert LABELS[N.VERIFICATIONS] == ("operation", "outcome")
    assert LABELS[N.TOKENS_ISSUED] == ("path",)
    assert LABELS[N.LIFECYCLE_STEP_FAILURES] == ("step",)
    for name in (N.INVALIDATION_FAILURES, N.INVALIDATION_RETRIES):
        assert LABELS[name] == ("reason",)
    for name in OBSERVATIONS:
        assert LABELS[name] == ("reason",)


def test_registers_counters_and_histograms_under_the_stable_names(
    prom: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    text = generate_latest(registry).decode()
    families = {family.name: family.type for family in text_string_to_metric_families(text)}
    for name in COUNTERS:
        # The parser names a counter family without `_total`; the exposition keeps it.
        assert families[name.removesuffix("_total")] == "counter"
        assert f"# TYPE {name} counter" in text
    for name in OBSERVATIONS:
        assert families[name] == "histogram"


def test_counter_sample_keeps_the_stable_name(
    prom: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    prom.increment(N.TOKENS_ISSUED, labels={"path": "inbox"})
    prom.increment(N.TOKENS_ISSUED, 2, labels={"path": "inbox"})
    assert prom.sample_name(N.TOKENS_ISSUED) == "magiclink_tokens_issued_total"
    assert value(registry, "magiclink_tokens_issued_total", path="inbox") == 3.0
    assert "magiclink_tokens_issued_total_total" not in generate_latest(registry).decode()


def test_latency_buckets_resolve_milliseconds(
    prom: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    assert LATENCY_BUCKETS[0] <= 0.001
    assert LATENCY_BUCKETS[-1] >= 5
    prom.observe(N.INVALIDATION_LATENCY, 0.0007, labels={"reason": "booking_cancelled"})
    prom.observe(N.INVALIDATION_LATENCY, 0.004, labels={"reason": "booking_cancelled"})
    name = N.INVALIDATION_LATENCY
    assert bucket(registry, name, 0.0005, reason="booking_cancelled") == 0
    assert bucket(registry, name, 0.001, reason="booking_cancelled") == 1
    assert bucket(registry, name, 0.0025, reason="booking_cancelled") == 1
    assert bucket(registry, name, 0.005, reason="booking_cancelled") == 2
    assert value(registry, f"{name}_count", reason="booking_cancelled") == 2
    assert value(registry, f"{name}_sum", reason="booking_cancelled") == pytest.approx(0.0047)


def test_token_count_buckets(prom: PrometheusMetrics, registry: CollectorRegistry) -> None:
    assert COUNT_BUCKETS[:11] == (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
    for count in (0, 1, 2, 3):
        prom.observe(N.TOKENS_INVALIDATED, count, labels={"reason": "rating_submitted"})
    name = N.TOKENS_INVALIDATED
    assert bucket(registry, name, 0, reason="rating_submitted") == 1
    assert bucket(registry, name, 1, reason="rating_submitted") == 2
    assert bucket(registry, name, 2, reason="rating_submitted") == 3
    assert bucket(registry, name, 5, reason="rating_submitted") == 4


def test_namespace_prefix_is_prepended(registry: CollectorRegistry) -> None:
    prom = PrometheusMetrics(registry, namespace_prefix="tutoring")
    prom.increment(N.INVALIDATIONS, labels={"reason": "booking_cancelled", "outcome": "succeeded"})
    assert prom.sample_name(N.INVALIDATIONS) == "tutoring_magiclink_invalidations_total"
    assert (
        value(
            registry,
            "tutoring_magiclink_invalidations_total",
            reason="booking_cancelled",
            outcome="succeeded",
        )
        == 1
    )
    assert value(registry, "magiclink_invalidations_total") == 0


@pytest.mark.parametrize("prefix", ["my-app", "1app", "a b"])
def test_malformed_prefix_is_refused_at_construction(
    registry: CollectorRegistry, prefix: str
) -> None:
    with pytest.raises(ValueError, match="namespace_prefix"):
        PrometheusMetrics(registry, namespace_prefix=prefix)


@pytest.mark.parametrize(
    ("option", "buckets"),
    [("latency_buckets", ()), ("latency_buckets", (0.1, 0.01)), ("count_buckets", (1, 1))],
)
def test_bad_buckets_are_refused_at_construction(
    registry: CollectorRegistry, option: str, buckets: tuple[float, ...]
) -> None:
    with pytest.raises(ValueError, match=option):
        PrometheusMetrics(registry, **{option: buckets})  # type: ignore[arg-type]


def test_custom_buckets_are_used(registry: CollectorRegistry) -> None:
    prom = PrometheusMetrics(registry, latency_buckets=(0.01, 1.0), count_buckets=(0, 3))
    prom.observe(N.INVALIDATION_LATENCY, 0.5, labels={"reason": "superseded"})
    assert bucket(registry, N.INVALIDATION_LATENCY, 0.01, reason="superseded") == 0
    assert bucket(registry, N.INVALIDATION_LATENCY, 1.0, reason="superseded") == 1
    assert (
        registry.get_sample_value(
            f"{N.INVALIDATION_LATENCY}_bucket", {"reason": "superseded", "le": "0.005"}
        )
        is None
    )


def test_a_second_instance_on_the_same_registry_is_refused(
    prom: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    with pytest.raises(ValueError, match="Duplicated"):
        PrometheusMetrics(registry)
    # ... but another prefix on the same registry is fine.
    PrometheusMetrics(registry, namespace_prefix="other")


def test_default_registry_is_the_client_global_one() -> None:
    from prometheus_client import REGISTRY

    prefix = "magiclink_test_default_registry"
    prom = PrometheusMetrics(namespace_prefix=prefix)
    try:
        assert prom.registry is REGISTRY
        prom.increment(N.TOKENS_ISSUED, labels={"path": "inbox"})
        assert REGISTRY.get_sample_value(prom.sample_name(N.TOKENS_ISSUED), {"path": "inbox"}) == 1
    finally:
        prom.unregister()
    assert prefix not in generate_latest(REGISTRY).decode()


def test_unregister_frees_the_names(registry: CollectorRegistry) -> None:
    prom = PrometheusMetrics(registry)
    prom.unregister()
    assert generate_latest(registry) == b""
    prom.increment(N.TOKENS_ISSUED, labels={"path": "inbox"})  # dropped, not raised
    again = PrometheusMetrics(registry)
    again.increment(N.TOKENS_ISSUED, labels={"path": "inbox"})
    assert value(registry, "magiclink_tokens_issued_total", path="inbox") == 1


def test_missing_extra_gives_an_actionable_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "magiclink.adapters.prometheus")
    with pytest.raises(ImportError, match=r'pip install "magiclink\[prometheus\]"'):
        importlib.import_module("magiclink.adapters.prometheus")


# ------------------------------------------------------- never raise on the host's hot path


def test_unknown_names_are_dropped_and_logged_once_at_debug(
    prom: PrometheusMetrics, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="magiclink")
    before = generate_latest(registry)
    for _ in range(3):
        prom.increment("magiclink_no_such_total")
        prom.observe("magiclink_no_such_seconds", 1.0)
        prom.observe(N.TOKENS_ISSUED, 1.0)  # a counter used as an observation
        prom.increment(N.INVALIDATION_LATENCY)  # an observation used as a counter
    assert generate_latest(registry) == before
    dropped = [r for r in caplog.records if getattr(r, "event", None) == "metrics.dropped"]
    assert sorted(r.metric for r in dropped) == sorted(  # type: ignore[attr-defined]
        [
            "magiclink_no_such_total",
            "magiclink_no_such_seconds",
            N.TOKENS_ISSUED,
            N.INVALIDATION_LATENCY,
        ]
    )
    assert {r.levelno for r in dropped} == {logging.DEBUG}
    assert {r.name for r in dropped} == {"magiclink.adapters.prometheus"}


def test_label_mismatch_is_recorded_not_raised(
    prom: PrometheusMetrics, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="magiclink")
    prom.increment(N.TOKENS_ISSUED, labels={"path": "inbox", "tenant": "acme"})
    prom.increment(N.TOKENS_ISSUED)
    prom.increment(N.INVALIDATIONS, labels={"reason": "manual_revocation"})
    assert value(registry, "magiclink_tokens_issued_total", path="inbox") == 1
    assert value(registry, "magiclink_tokens_issued_total", path="") == 1
    assert (
        value(registry, "magiclink_invalidations_total", reason="manual_revocation", outcome="")
        == 1
    )
    assert "tenant" not in generate_latest(registry).decode()
    events = {getattr(r, "event", None) for r in caplog.records}
    assert "metrics.labels_mismatch" in events


def test_client_errors_are_swallowed(
    prom: PrometheusMetrics, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="magiclink")
    prom.increment(N.TOKENS_ISSUED, -1, labels={"path": "inbox"})  # counters only go up
    prom.observe(N.TOKENS_INVALIDATED, "many", labels={"reason": "x"})  # type: ignore[arg-type]
    assert value(registry, "magiclink_tokens_issued_total", path="inbox") == 0
    assert [getattr(r, "event", None) for r in caplog.records].count("metrics.dropped") == 2


def test_concurrent_increments_are_all_counted(
    prom: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    def work() -> None:
        for _ in range(500):
            prom.increment(N.VERIFICATIONS, labels={"operation": "verify", "outcome": "accepted"})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = value(registry, "magiclink_verifications_total", operation="verify", outcome="accepted")
    assert total == 2000


# ------------------------------------------------------------- driven by the real services


@pytest.fixture
def world(prom: PrometheusMetrics) -> World:
    return build(prom)


def test_tokens_issued_by_path(world: World, registry: CollectorRegistry) -> None:
    booking_id = world.book_id()
    world.guests.request_inbox_link("ada@example.com", booking_id)
    world.bookings.reschedule_session(booking_id, world.clock.now() + timedelta(days=3), MENTOR)
    sample = "magiclink_tokens_issued_total"
    assert value(registry, sample, path="booking") == 1
    assert value(registry, sample, path="inbox") == 1
    assert value(registry, sample, path="reschedule") == 1


def test_invalidations_by_reason_and_outcome_with_latency_and_tokens_per_booking(
    world: World, registry: CollectorRegistry
) -> None:
    cancelled = world.book_id()
    world.clock.advance(timedelta(minutes=2))
    world.guests.request_inbox_link("ada@example.com", cancelled)  # a second live link
    world.bookings.cancel_session(cancelled, "ill", "mentor", MENTOR)

    moved = world.book_id("bob@example.com")
    world.bookings.reschedule_session(moved, world.clock.now() + timedelta(days=4), MENTOR)

    rated = world.book_id("cy@example.com")
    world.ratings.create_rating(rated, "profile-7", 5)

    sample = "magiclink_invalidations_total"
    assert value(registry, sample, reason="booking_cancelled", outcome="succeeded") == 1
    assert value(registry, sample, reason="booking_rescheduled", outcome="succeeded") == 1
    assert value(registry, sample, reason="rating_submitted", outcome="succeeded") == 1
    assert value(registry, sample, reason="booking_cancelled", outcome="failed") == 0

    latency = N.INVALIDATION_LATENCY
    for reason in ("booking_cancelled", "booking_rescheduled", "rating_submitted"):
        assert value(registry, f"{latency}_count", reason=reason) == 1
        assert value(registry, f"{latency}_sum", reason=reason) >= 0

    per_booking = N.TOKENS_INVALIDATED
    assert value(registry, f"{per_booking}_sum", reason="booking_cancelled") == 2
    assert bucket(registry, per_booking, 1, reason="booking_cancelled") == 0
    assert bucket(registry, per_booking, 2, reason="booking_cancelled") == 1
    assert value(registry, f"{per_booking}_sum", reason="booking_rescheduled") == 1

    # Invalidating again finds nothing left: a success that changed 0 tokens.
    assert world.guests.invalidate_tokens_by_booking_id(cancelled, "booking_cancelled") == 0
    assert value(registry, sample, reason="booking_cancelled", outcome="succeeded") == 2
    assert bucket(registry, per_booking, 0, reason="booking_cancelled") == 1


def test_failed_invalidation_is_retried_once_then_counted(
    prom: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    world = build(prom, uow=faulty)
    booking_id = world.book_id()
    faulty.arm(1, match="tokens.invalidate_by_booking", transient=True, times=2)

    cancelled = world.bookings.cancel_session(booking_id, "", "student", SYSTEM)

    assert cancelled.status == "cancelled"  # R9: the booking operation still completes
    assert faulty.failures == ["tokens.invalidate_by_booking"] * 2
    reason = {"reason": "booking_cancelled"}
    assert value(registry, "magiclink_invalidation_retries_total", **reason) == 1
    assert value(registry, "magiclink_invalidation_failures_total", **reason) == 1
    assert value(registry, "magiclink_invalidations_total", **reason, outcome="failed") == 1
    assert value(registry, "magiclink_invalidations_total", **reason, outcome="succeeded") == 0
    assert value(registry, "magiclink_lifecycle_step_failures_total", step="invalidate") == 1
    # A failure is not a latency sample of a successful invalidation.
    assert value(registry, f"{N.INVALIDATION_LATENCY}_count", **reason) == 0


def test_transient_failure_healed_by_the_retry_counts_as_success(
    prom: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    world = build(prom, uow=faulty)
    booking_id = world.book_id()
    faulty.arm(1, match="tokens.invalidate_by_booking", transient=True, times=1)

    world.bookings.mark_session_as_no_show(booking_id, MENTOR)

    reason = {"reason": "booking_cancelled"}
    assert value(registry, "magiclink_invalidation_retries_total", **reason) == 1
    assert value(registry, "magiclink_invalidation_failures_total", **reason) == 0
    assert value(registry, "magiclink_invalidations_total", **reason, outcome="succeeded") == 1


def test_failed_notification_counts_a_lifecycle_step_failure(
    prom: PrometheusMetrics, registry: CollectorRegistry
) -> None:
    world = build(prom)

    def refuse(message: object) -> None:
        raise ConnectionError("SMTP server unavailable")

    world.notifier.send = refuse  # type: ignore[method-assign]
    outcome = world.bookings.book_session(7, "ada@example.com", world.clock.now())
    assert outcome.link_sent is False
    assert value(registry, "magiclink_lifecycle_step_failures_total", step="notify") == 1
    assert value(registry, "magiclink_tokens_issued_total", path="booking") == 1


def test_verifications_by_operation_and_outcome(registry: CollectorRegistry) -> None:
    prom = PrometheusMetrics(registry)
    world = build(prom, settings=Settings(request_interval=timedelta(0)))
    sample = "magiclink_verifications_total"

    def outcome(operation: str, name: str) -> float:
        return value(registry, sample, operation=operation, outcome=name)

    # accepted (verify, then consume), reuse (consume again), used links are refused
    booking_id = world.book_id()
    raw = world.last_raw()
    world.guests.verify_token(raw)
    world.guests.consume_token(raw)
    for check in (world.guests.consume_token, world.guests.verify_token):
        with pytest.raises(TokenExpiredOrUsed):
            check(raw)
    assert outcome("verify", "accepted") == 1
    assert outcome("consume", "accepted") == 1
    assert outcome("consume", "reuse") == 1
    assert outcome("verify", "reuse") == 1

    # invalid: malformed and unknown
    for bad in ("not-a-token", "0" * 64):
        with pytest.raises(InvalidToken):
            world.guests.verify_token(bad)
    assert outcome("verify", "invalid") == 2

    # expired
    expiring = world.guests.request_inbox_link("ada@example.com").raw
    world.clock.advance(timedelta(minutes=15))
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.verify_token(expiring)
    assert outcome("verify", "expired") == 1

    # a link of the old revision: its invalidation ran, so the token itself says so
    moving = world.guests.request_inbox_link("ada@example.com", booking_id).raw
    world.bookings.reschedule_session(booking_id, world.clock.now() + timedelta(days=5), MENTOR)
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.verify_token(moving)
    assert outcome("verify", "invalidated") == 1  # the invalidation did run

    # the fresh link of a booking then cancelled
    fresh = world.last_raw()
    world.bookings.cancel_session(booking_id, "", "mentor", MENTOR)
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.verify_token(fresh)
    assert outcome("verify", "invalidated") == 2

    # blocked guest
    world.book_id("bob@example.com")
    blocked_raw = world.last_raw()
    world.guests.block_guest("bob@example.com")
    with pytest.raises(AccessDenied):
        world.guests.verify_token(blocked_raw)
    assert outcome("verify", "blocked") == 1


def test_booking_state_outcomes_when_invalidation_failed(registry: CollectorRegistry) -> None:
    """Fail-closed outcomes (§5.4) are counted by their own name."""
    prom = PrometheusMetrics(registry)
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    world = build(prom, uow=faulty)
    sample = "magiclink_verifications_total"

    moved = world.book_id()
    old = world.last_raw()
    closed = world.book_id("bob@example.com")
    closed_raw = world.last_raw()
    faulty.arm(1, match="tokens.invalidate_by_booking", times=10)
    world.bookings.reschedule_session(moved, world.clock.now() + timedelta(days=3), MENTOR)
    world.bookings.cancel_session(closed, "", "mentor", MENTOR)
    faulty.disarm()

    for raw in (old, closed_raw):
        with pytest.raises(TokenExpiredOrUsed):
            world.guests.verify_token(raw)
    assert value(registry, sample, operation="verify", outcome="booking_rescheduled") == 1
    assert value(registry, sample, operation="verify", outcome="booking_closed") == 1
    assert value(registry, "magiclink_invalidation_failures_total", reason="booking_cancelled") == 1


def test_reuse_revocation_is_counted_as_an_invalidation(registry: CollectorRegistry) -> None:
    prom = PrometheusMetrics(registry)
    world = build(prom, settings=Settings(revoke_on_reuse=True, request_interval=timedelta(0)))
    booking_id = world.book_id()
    first = world.last_raw()
    world.guests.consume_token(first)
    world.guests.request_inbox_link("ada@example.com", booking_id)
    world.clock.advance(world.settings.reuse_grace)  # past the double-click grace (§9.8)
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.consume_token(first)
    assert (
        value(registry, "magiclink_verifications_total", operation="consume", outcome="reuse") == 1
    )
    assert (
        value(
            registry, "magiclink_invalidations_total", reason="reuse_detected", outcome="succeeded"
        )
        == 1
    )
    assert value(registry, f"{N.TOKENS_INVALIDATED}_sum", reason="reuse_detected") == 1


def test_rendered_exposition_round_trips(world: World, registry: CollectorRegistry) -> None:
    """What a scraper reads: parse the text format and find the lifecycle's samples."""
    booking_id = world.book_id()
    world.bookings.cancel_session(booking_id, "", "mentor", MENTOR)
    text = generate_latest(registry).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    key = (
        "magiclink_invalidations_total",
        (("outcome", "succeeded"), ("reason", "booking_cancelled")),
    )
    assert samples[key] == 1
    count_key = (f"{N.INVALIDATION_LATENCY}_count", (("reason", "booking_cancelled"),))
    assert samples[count_key] == 1
