"""How far to trust a method: its scores on one pair against exact patching's.

* ``spearman`` / ``pearson``: correlation of the method's cell scores with exact's;
* ``top5_recall``: how many of exact's 5 strongest cells are among the method's 5 strongest (0–1);
* ``region_share``: the share of the method's positive effect that falls in cells inside the expected
  region (the swapped word's span), or None without a region;
* ``time_fraction``: the method's sweep time over exact's on the same cells (set-up outside both clocks).

A cell's *effect* is its normalised score for denoising (recovery) and 1 − score for noising (loss), so
larger is more important in both directions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from otoscope.patching.result import spearman
from otoscope.patching.scores import pearson

TOP_K = 5  # cells compared by top-k recall


def effect(normalized, direction: str) -> np.ndarray:
    """Importance of each cell: recovery (denoising) or loss (noising); NaN stays NaN."""
    x = np.asarray(normalized, dtype=np.float64)
    return x if direction == "denoising" else 1.0 - x


def top_k_recall(reference, estimate, k: int = TOP_K) -> float:
    """Share of the reference's ``k`` largest cells among the estimate's ``k`` largest (NaN ranks last)."""
    ref = np.nan_to_num(np.asarray(reference, dtype=np.float64), nan=-np.inf)
    est = np.nan_to_num(np.asarray(estimate, dtype=np.float64), nan=-np.inf)
    k = min(k, len(ref))
    if k == 0:
        return float("nan")
    return len(set(np.argsort(-ref, kind="stable")[:k]) & set(np.argsort(-est, kind="stable")[:k])) / k


def region_share(values, inside) -> float | None:
    """Positive effect inside the region over all positive effect; None without a region or any effect."""
    inside = np.asarray(inside, dtype=bool)
    if not inside.any():
        return None
    pos = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0, None)
    total = pos.sum()
    return float(pos[inside].sum() / total) if total > 0 else None


def cells_in_region(cells: list[dict], region: tuple[float, float] | None) -> list[bool]:
    """Which frame cells lie mostly (half or more) inside ``region`` (seconds); all False for token cells."""
    out = []
    for c in cells:
        s = c.get("seconds")
        if region is None or s is None or s[1] <= s[0]:
            out.append(False)
            continue
        overlap = max(0.0, min(s[1], region[1]) - max(s[0], region[0]))
        out.append(overlap >= 0.5 * (s[1] - s[0]))
    return out


@dataclass
class Scores:
    """One method on one pair, against exact patching."""

    spearman: float
    """Rank correlation with exact."""
    pearson: float
    """Linear correlation with exact."""
    top5_recall: float
    """Exact's top-5 cells found in the method's top 5 (0–1)."""
    region_share: float | None
    """Share of the method's positive effect inside the expected region."""
    time_fraction: float | None
    """Method's time / exact's time on the same cells."""

    def to_json(self) -> dict:
        """Plain JSON (NaN → None)."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def score(exact, estimate, direction: str, inside, seconds: float | None, exact_seconds: float | None) -> Scores:
    """Scores of ``estimate`` (normalised cell scores) against ``exact`` on the same cells."""
    e, m = effect(exact, direction), effect(estimate, direction)
    fraction = seconds / exact_seconds if seconds is not None and exact_seconds else None
    return Scores(spearman(e, m), pearson(e, m), top_k_recall(e, m), region_share(m, inside), fraction)
