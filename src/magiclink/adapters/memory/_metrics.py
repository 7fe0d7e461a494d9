"""`InMemoryMetrics`: every count and observation in memory, with totals and percentiles."""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Mapping

from magiclink.ports._metrics import Metrics


def _label_key(labels: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((labels or {}).items()))


class InMemoryMetrics(Metrics):
    """Records every count and observation; answers totals and percentiles."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self._observations: dict[str, dict[tuple[tuple[str, str], ...], list[float]]] = defaultdict(
            lambda: defaultdict(list)
        )

    def increment(
        self, name: str, amount: float = 1.0, labels: Mapping[str, str] | None = None
    ) -> None:
        """Add `amount` to a counter."""
        with self._lock:
            self._counters[name][_label_key(labels)] += amount

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Record one observation."""
        with self._lock:
            self._observations[name][_label_key(labels)].append(value)

    @staticmethod
    def _matches(key: tuple[tuple[str, str], ...], labels: Mapping[str, str]) -> bool:
        present = dict(key)
        return all(present.get(k) == v for k, v in labels.items())

    def count(self, name: str, **labels: str) -> float:
        """The counter's total over every label set that includes `labels`."""
        with self._lock:
            series = self._counters.get(name, {})
            return sum(v for k, v in series.items() if self._matches(k, labels))

    def values(self, name: str, **labels: str) -> list[float]:
        """Every observation of `name` whose labels include `labels`."""
        with self._lock:
            series = self._observations.get(name, {})
            return [v for k, vs in series.items() if self._matches(k, labels) for v in vs]

    def percentile(self, name: str, q: float, **labels: str) -> float | None:
        """The q-th percentile (0-100, nearest rank) of the observations, or None if none."""
        data = sorted(self.values(name, **labels))
        if not data:
            return None
        # round() first: q / 100 * n in floats gives 7.000000000000001 for p7 of 100 values.
        rank = max(1, math.ceil(round(q * len(data) / 100, 9)))
        return data[min(rank, len(data)) - 1]

    def summary(self, name: str, **labels: str) -> dict[str, float | None]:
        """count, p50, p95 and p99 of an observation series."""
        return {
            "count": float(len(self.values(name, **labels))),
            "p50": self.percentile(name, 50, **labels),
            "p95": self.percentile(name, 95, **labels),
            "p99": self.percentile(name, 99, **labels),
        }

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Every counter, by name and rendered label set (`reason=x,outcome=y`)."""
        with self._lock:
            return {
                name: {",".join(f"{k}={v}" for k, v in key): value for key, value in series.items()}
                for name, series in self._counters.items()
            }


__all__ = ["InMemoryMetrics"]
