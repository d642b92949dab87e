"""Uncertainty of the study's held-out figures: Wilson intervals for rates, paired bootstrap for the rest.

With tens of held-out clips a rate moves by several points per clip, so every rate is reported with its
95 % interval: the Wilson score interval for a binomial proportion (sound at 0 and 1, unlike the normal
approximation), and a percentile bootstrap over clips for the hallucination reduction and the mean WER
increase (paired: the same clips, steered and not).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

Z95 = 1.959964  # two-sided 95 % normal quantile
BOOTSTRAP = 2000  # resamples
SEED = 0  # the bootstrap's seed (intervals are reproducible)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``successes / n`` → (low, high); (0, 1) when ``n`` is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_interval(flags: Sequence[bool]) -> dict:
    """``{"rate", "low", "high", "k", "n"}`` for a list of per-clip yes/no outcomes."""
    k, n = int(sum(bool(f) for f in flags)), len(flags)
    low, high = wilson(k, n)
    return {"rate": k / n if n else 0.0, "low": low, "high": high, "k": k, "n": n}


def reduction_interval(before: Sequence[bool], after: Sequence[bool], seed: int = SEED) -> dict:
    """``1 − rate(after) / rate(before)`` over the same clips, with a paired percentile bootstrap interval."""
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    value = 1 - a.mean() / b.mean() if len(b) and b.mean() else 0.0
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(b), size=(BOOTSTRAP, len(b))) if len(b) else np.zeros((0, 0), dtype=int)
    rb, ra = b[idx].mean(1), a[idx].mean(1)
    draws = np.where(rb > 0, 1 - ra / np.where(rb > 0, rb, 1), 0.0)
    low, high = (np.percentile(draws, [2.5, 97.5]) if len(draws) else (value, value))
    return {"value": float(value), "low": float(low), "high": float(high)}


def mean_interval(values: Sequence[float], seed: int = SEED) -> dict:
    """Mean of ``values`` (e.g. per-clip WER differences) with a percentile bootstrap interval."""
    v = np.asarray(values, dtype=float)
    if not len(v):
        return {"value": 0.0, "low": 0.0, "high": 0.0}
    rng = np.random.default_rng(seed)
    draws = v[rng.integers(0, len(v), size=(BOOTSTRAP, len(v)))].mean(1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"value": float(v.mean()), "low": float(low), "high": float(high)}
