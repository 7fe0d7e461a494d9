"""The metrics port, its stable metric names, and the no-op default."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Final


class MetricNames:
    """Stable metric names. Counters end in `_total`; the others are observations."""

    INVALIDATIONS: Final = "magiclink_invalidations_total"  # labels: reason, outcome
    INVALIDATION_FAILURES: Final = "magiclink_invalidation_failures_total"  # labels: reason
    INVALIDATION_RETRIES: Final = "magiclink_invalidation_retries_total"  # labels: reason
    INVALIDATION_LATENCY: Final = "magiclink_invalidation_duration_seconds"  # labels: reason
    TOKENS_INVALIDATED: Final = "magiclink_tokens_invalidated_per_booking"  # labels: reason
    VERIFICATIONS: Final = "magiclink_verifications_total"  # labels: operation, outcome
    TOKENS_ISSUED: Final = "magiclink_tokens_issued_total"  # labels: path
    LIFECYCLE_STEP_FAILURES: Final = "magiclink_lifecycle_step_failures_total"  # labels: step


COUNTERS: Final = frozenset(
    {
        MetricNames.INVALIDATIONS,
        MetricNames.INVALIDATION_FAILURES,
        MetricNames.INVALIDATION_RETRIES,
        MetricNames.VERIFICATIONS,
        MetricNames.TOKENS_ISSUED,
        MetricNames.LIFECYCLE_STEP_FAILURES,
    }
)
OBSERVATIONS: Final = frozenset({MetricNames.INVALIDATION_LATENCY, MetricNames.TOKENS_INVALIDATED})


class Metrics(abc.ABC):
    """Receives counts and observations; names come from `MetricNames`."""

    @abc.abstractmethod
    def increment(
        self, name: str, amount: float = 1.0, labels: Mapping[str, str] | None = None
    ) -> None:
        """Add `amount` to the counter `name` with these labels."""

    @abc.abstractmethod
    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Record one observation of `name` (a latency in seconds, a count per booking)."""


class NullMetrics(Metrics):
    """Discards everything: the default when a service is given no metrics."""

    def increment(
        self, name: str, amount: float = 1.0, labels: Mapping[str, str] | None = None
    ) -> None:
        """Do nothing."""

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Do nothing."""


__all__ = ["COUNTERS", "OBSERVATIONS", "MetricNames", "Metrics", "NullMetrics"]
