"""Intervals of the study's held-out figures against known values and a brute-force bootstrap."""

import numpy as np
import pytest

from otoscope.steer.intervals import BOOTSTRAP, mean_interval, rate_interval, reduction_interval, wilson


@pytest.mark.parametrize("k, n, low, high", [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634),
                                             (18, 61, 0.1956, 0.4189)])  # statsmodels proportion_confint(method="wilson")
def test_wilson_matches_reference_values(k, n, low, high):
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=1e-3) and hi == pytest.approx(high, abs=1e-3)


def test_rate_interval_counts():
    r = rate_interval([True, False, False, True])
    assert (r["k"], r["n"], r["rate"]) == (2, 4, 0.5) and r["low"] < 0.5 < r["high"]


def test_bootstraps_equal_a_plain_loop():
    before = [True] * 20
    after = [True] * 6 + [False] * 14
    r = reduction_interval(before, after, seed=3)
    assert r["value"] == pytest.approx(0.7)
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 20, size=(BOOTSTRAP, 20))
    draws = [1 - np.mean([after[i] for i in row]) / np.mean([before[i] for i in row]) for row in idx]
    assert (r["low"], r["high"]) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])))
    m = mean_interval([0.0, 0.0, 0.5, -0.25])
    assert m["value"] == pytest.approx(0.0625) and m["low"] <= m["value"] <= m["high"]
