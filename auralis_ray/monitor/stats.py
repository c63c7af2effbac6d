"""Small pure statistics shared by the monitor: nearest-rank percentiles and a least-squares line.

Nearest-rank percentiles always return an observed value, so a reported p99 is a latency that really
happened (interpolating between samples understates tails when samples are few).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


def nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q <= 1) of already sorted values by the nearest-rank rule."""
    if len(sorted_values) == 0:
        raise ValueError("no values")
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    # (the tolerance keeps q * n that is an integer up to float rounding, e.g. 0.999 * 1000, on that rank)
    return float(sorted_values[max(0, math.ceil(q * len(sorted_values) - 1e-9) - 1)])


@dataclass(frozen=True)
class Summary:
    """Count, mean, p50/p95/p99 and max of a set of observations."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> "Summary":
        ordered = sorted(values)
        return cls(
            count=len(ordered),
            mean=math.fsum(ordered) / len(ordered),
            p50=nearest_rank(ordered, 0.50),
            p95=nearest_rank(ordered, 0.95),
            p99=nearest_rank(ordered, 0.99),
            max=float(ordered[-1]),
        )


@dataclass(frozen=True)
class LineFit:
    """y = slope * x + intercept, with the standard error of the slope (nan below 3 points)."""

    slope: float
    intercept: float
    slope_stderr: float
    n: int


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> LineFit:
    """Ordinary least squares. Needs at least two distinct x values."""
    n = len(xs)
    if n != len(ys):
        raise ValueError("xs and ys differ in length")
    if n < 2:
        raise ValueError("need at least two points")
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    if sxx == 0.0:
        raise ValueError("all x values are equal")
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys))
    slope = sxy / sxx
    intercept = my - slope * mx
    if n < 3:
        return LineFit(slope, intercept, math.nan, n)
    residual = math.fsum((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys))
    return LineFit(slope, intercept, math.sqrt(residual / (n - 2) / sxx), n)
