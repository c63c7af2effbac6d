import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auralis_ray.monitor.rate import RateMeter
from auralis_ray.monitor.stats import Summary, fit_line, nearest_rank


def test_nearest_rank_returns_observed_values():
    values = list(range(1, 11))
    assert [nearest_rank(values, q) for q in (0.1, 0.5, 0.95, 0.99, 1.0)] == [1, 5, 10, 10, 10]
    with pytest.raises(ValueError):
        nearest_rank([], 0.5)
    with pytest.raises(ValueError):
        nearest_rank(values, 0.0)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200))
def test_summary_is_ordered_and_observed(values):
    s = Summary.of(values)
    assert min(values) <= s.p50 <= s.p95 <= s.p99 <= s.max == max(values)
    assert {s.p50, s.p95, s.p99} <= set(values)


@given(st.floats(-100, 100), st.floats(-100, 100))
def test_fit_line_recovers_exact_lines(slope, intercept):
    xs = [0.0, 1.0, 2.5, 4.0, 7.0]
    fit = fit_line(xs, [slope * x + intercept for x in xs])
    assert math.isclose(fit.slope, slope, abs_tol=1e-7)
    assert math.isclose(fit.intercept, intercept, abs_tol=1e-7)
    assert fit.slope_stderr < 1e-6


def test_fit_line_needs_distinct_x():
    with pytest.raises(ValueError):
        fit_line([1.0, 1.0], [0.0, 1.0])
    assert math.isnan(fit_line([0.0, 1.0], [0.0, 1.0]).slope_stderr)


def test_rate_meter_counts_events_in_window():
    meter = RateMeter(window_sec=10.0)
    for t in range(20):  # one event per second for 20 s
        meter.tick(float(t))
    assert meter.rate(19.5) == 1.0
    assert meter.rate(25.0) == 0.4  # events at 16..19 remain in (15, 25]
    assert meter.rate(100.0) == 0.0
    with pytest.raises(ValueError):
        RateMeter(0)
