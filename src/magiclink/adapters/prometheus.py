"""`PrometheusMetrics`: the `Metrics` port on `prometheus_client` (extra `magiclink[prometheus]`).

Every name of `magiclink.ports._metrics.MetricNames` is registered once, at construction, with a
fixed label set (`LABELS`): the counters (`COUNTERS`) as Prometheus counters, the observations
(`OBSERVATIONS`) as histograms. Exposing them is the host's business (`start_http_server`,
`make_wsgi_app`, its framework's exporter) on the registry given here.

Metrics are recorded on the request path of the host, so `increment` and `observe` never
raise: an unknown name is dropped, a label the name does not have is ignored, a missing one is
recorded as the empty string (Prometheus' "absent"), and any error of the client library is
swallowed. Each such anomaly is logged once at DEBUG on logger `magiclink.adapters.prometheus`
(event `metrics.dropped` or `metrics.labels_mismatch`). Configuration mistakes (a bad prefix,
bad buckets, a name already registered) raise `ValueError` at construction instead.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Final, TypeVar

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
except ImportError as error:  # pragma: no cover - exercised by a test that hides the module
    raise ImportError(
        "magiclink.adapters.prometheus needs prometheus_client: "
        'install the extra with `pip install "magiclink[prometheus]"`',
        name="prometheus_client",
    ) from error

from magiclink.ports._metrics import COUNTERS, OBSERVATIONS, MetricNames, Metrics

_log: Final = logging.getLogger(__name__)
_Collector = TypeVar("_Collector", Counter, Histogram)

LABELS: Final[Mapping[str, tuple[str, ...]]] = {
    MetricNames.INVALIDATIONS: ("reason", "outcome"),
    MetricNames.INVALIDATION_FAILURES: ("reason",),
    MetricNames.INVALIDATION_RETRIES: ("reason",),
    MetricNames.INVALIDATION_LATENCY: ("reason",),
    MetricNames.TOKENS_INVALIDATED: ("reason",),
    MetricNames.VERIFICATIONS: ("operation", "outcome"),
    MetricNames.TOKENS_ISSUED: ("path",),
    MetricNames.LIFECYCLE_STEP_FAILURES: ("step",),
}
"""The label names of every metric, in order. Fixed: a dashboard may rely on them."""

DOCUMENTATION: Final[Mapping[str, str]] = {
    MetricNames.INVALIDATIONS: "Batch and single-token invalidations, by reason and outcome.",
    MetricNames.INVALIDATION_FAILURES: "Invalidations that failed after their retry, by reason.",
    MetricNames.INVALIDATION_RETRIES: "Invalidations retried after a transient storage error.",
    MetricNames.INVALIDATION_LATENCY: "Duration of a booking's batch invalidation, in seconds.",
    MetricNames.TOKENS_INVALIDATED: "Tokens changed by one invalidation of a booking.",
    MetricNames.VERIFICATIONS: "verify_token and consume_token calls, by operation and outcome.",
    MetricNames.TOKENS_ISSUED: "Links issued, by creation path (inbox, booking, reschedule).",
    MetricNames.LIFECYCLE_STEP_FAILURES: "Failed after-steps of a booking change, by step.",
}

LATENCY_BUCKETS: Final[tuple[float, ...]] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds: fine-grained over the milliseconds a batch UPDATE takes, coarse up to timeouts."""

COUNT_BUCKETS: Final[tuple[float, ...]] = (
    0,
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1000,
    2000,
    5000,
    10000,
)
"""Tokens per booking: 0 (nothing left to kill) and 1 are the common cases; the tail finds abuse."""

_PREFIX: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _check_buckets(buckets: Sequence[float], name: str) -> tuple[float, ...]:
    values = tuple(float(b) for b in buckets)
    if not values or any(math.isnan(b) for b in values):
        raise ValueError(f"{name} must be a non-empty sequence of numbers")
    if any(b >= c for b, c in itertools.pairwise(values)):
        raise ValueError(f"{name} must be strictly increasing")
    return values


class PrometheusMetrics(Metrics):
    """Records magiclink's metrics in a `prometheus_client` registry.

    `registry` defaults to the client's global `REGISTRY` (what `start_http_server` exposes);
    tests and hosts with several registries pass their own. `namespace_prefix` (say `"myapp"`)
    is prepended to every name: `myapp_magiclink_invalidations_total`. `latency_buckets` (in
    seconds) and `count_buckets` override the histogram buckets.

    Raises `ValueError` at construction for a malformed prefix, bad buckets, or when the
    registry already holds these names (one `PrometheusMetrics` per registry and prefix; share
    it between services).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace_prefix: str = "",
        latency_buckets: Sequence[float] = LATENCY_BUCKETS,
        count_buckets: Sequence[float] = COUNT_BUCKETS,
    ) -> None:
        if namespace_prefix and _PREFIX.fullmatch(namespace_prefix) is None:
            raise ValueError(f"namespace_prefix is not a valid metric name: {namespace_prefix!r}")
        self._registry = registry if registry is not None else REGISTRY
        self._prefix = f"{namespace_prefix}_" if namespace_prefix else ""
        buckets = {
            MetricNames.INVALIDATION_LATENCY: _check_buckets(latency_buckets, "latency_buckets"),
            MetricNames.TOKENS_INVALIDATED: _check_buckets(count_buckets, "count_buckets"),
        }
        self._counters: dict[str, Counter] = {}
        self._histograms: dict[str, Histogram] = {}
        for name in sorted(COUNTERS):
            self._counters[name] = Counter(
                # prometheus_client appends `_total` to a counter's samples itself.
                self._prefix + name.removesuffix("_total"),
                DOCUMENTATION.get(name, name),
                LABELS.get(name, ()),
                registry=self._registry,
            )
        for name in sorted(OBSERVATIONS):
            self._histograms[name] = Histogram(
                self._prefix + name,
                DOCUMENTATION.get(name, name),
                LABELS.get(name, ()),
                registry=self._registry,
                buckets=buckets.get(name, COUNT_BUCKETS),
            )
        self._reported: set[tuple[str, ...]] = set()
        self._reported_lock = threading.Lock()

    @property
    def registry(self) -> CollectorRegistry:
        """The registry holding the metrics (expose it, or read samples back in tests)."""
        return self._registry

    def sample_name(self, name: str) -> str:
        """The exposed name of the metric `name` (prefix included; counters end in `_total`)."""
        return self._prefix + name

    def unregister(self) -> None:
        """Remove these metrics from the registry (a reconfiguring host, a test's clean-up)."""
        for collector in (*self._counters.values(), *self._histograms.values()):
            self._registry.unregister(collector)
        self._counters.clear()
        self._histograms.clear()

    def increment(
        self, name: str, amount: float = 1.0, labels: Mapping[str, str] | None = None
    ) -> None:
        """Add `amount` (not negative) to the counter `name`. Never raises."""
        counter = self._counters.get(name)
        self._record(counter, "counter", name, labels, lambda child: child.inc(amount))

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Record one observation in the histogram `name`. Never raises."""
        histogram = self._histograms.get(name)
        self._record(histogram, "observation", name, labels, lambda child: child.observe(value))

    def _record(
        self,
        collector: _Collector | None,
        kind: str,
        name: str,
        labels: Mapping[str, str] | None,
        apply: Callable[[_Collector], None],
    ) -> None:
        """`apply` to the collector's child for `labels` (the collector itself when it has
        none); what goes wrong is reported, never raised."""
        if collector is None:
            self._report("metrics.dropped", name, f"not a magiclink {kind}")
            return
        try:
            values = self._label_values(name, labels)
            apply(collector.labels(*values) if values else collector)
        except Exception as error:  # the host's request must not fail because of a metric
            self._report("metrics.dropped", name, f"{type(error).__name__}: {error}")

    def _label_values(self, name: str, labels: Mapping[str, str] | None) -> tuple[str, ...]:
        expected = LABELS.get(name, ())
        given = labels if labels is not None else {}
        if set(given) != set(expected):
            self._report(
                "metrics.labels_mismatch",
                name,
                f"labels {sorted(given)} recorded as {list(expected)}",
            )
        return tuple(str(given.get(label, "")) for label in expected)

    def _report(self, event: str, name: str, detail: str) -> None:
        """Log an anomaly once per (event, metric, detail) at DEBUG."""
        key = (event, name, detail)
        with self._reported_lock:
            if key in self._reported:
                return
            self._reported.add(key)
        _log.debug("%s metric=%s %s", event, name, detail, extra={"event": event, "metric": name})


__all__ = [
    "COUNT_BUCKETS",
    "DOCUMENTATION",
    "LABELS",
    "LATENCY_BUCKETS",
    "PrometheusMetrics",
]
