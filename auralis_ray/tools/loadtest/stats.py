"""Percentiles and threshold fractions, the arithmetic behind the report.

Percentiles use the nearest-rank definition: the q-th percentile of n values is the
ceil(q/100 * n)-th smallest. It is always one of the measured values, never an
interpolation, so "p99.9 = 41 ms" means at least 99.9 % of values were ≤ 41 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from auralis_ray.monitor.stats import nearest_rank


@dataclass
class Percentiles:
    """Nearest-rank percentiles and the maximum of a set of values."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None


def percentile(sorted_values: Sequence[float] | np.ndarray, q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 < q ≤ 100)."""
    if not 0 < q <= 100:
        raise ValueError(f"q must be in (0, 100], got {q}")
    return nearest_rank(sorted_values, q / 100.0)


def summarize(values: Sequence[float] | np.ndarray) -> Percentiles:
    arr = np.sort(np.asarray(values, dtype=np.float64))
    if arr.size == 0:
        return Percentiles()
    return Percentiles(
        count=int(arr.size),
        p50=percentile(arr, 50),
        p95=percentile(arr, 95),
        p99=percentile(arr, 99),
        p999=percentile(arr, 99.9),
        max=float(arr[-1]),
    )


def fraction_within(values: Sequence[float] | np.ndarray, limit: float) -> float | None:
    """Share of values ≤ limit (None when there are no values)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return None
    return float(np.count_nonzero(arr <= limit)) / arr.size
