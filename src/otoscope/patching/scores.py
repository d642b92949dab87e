"""How far to trust a localization method: its map scored against exact patching of the same cells.

:func:`score_method` compares two results of one sweep (the same cells, in the same order):

* ``spearman``, ``pearson`` — rank and linear correlation of the cells' values (raw metric values: the
  normalised scores are an affine map of them, so both correlations are the same either way);
* ``top_recall`` — the share of exact patching's ``top`` strongest cells (5 by default) among the method's
  ``top`` strongest (:meth:`PatchResult.ranking`, by the magnitude of the effect);
* ``region_share`` — the share of the method's total effect magnitude that falls inside an expected region
  (a boolean mask over the cells, e.g. :func:`region_mask` of the swapped word's span); NaN without a region;
* ``time_fraction`` — the method's time over exact patching's (``context["seconds"]``, which every method in
  :data:`otoscope.patching.methods.METHODS` records with the session set up outside the clock).

Why by magnitude: a localisation method is trusted first for *where* the effect is. A cell whose patch moves
the metric the other way (a negative effect: it pushes toward the corrupt answer) is as much a part of the
mechanism as one that restores it, so top recall and region share count |effect|; the sign is judged by the
correlations, which are signed. A method that finds exact patching's cells with every sign flipped thus scores
top recall 1 and exact's region share, and Spearman = Pearson = −1: the correlation is what flags it. This is
the one definition: the benchmark (:mod:`otoscope.bench`) scores its units with :func:`score_method`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from otoscope.patching.result import PatchResult, spearman


@dataclass
class MethodScores:
    """One method's map against exact patching's, on the same cells."""

    method: str
    """The method scored."""
    cells: int
    """Cells compared."""
    spearman: float
    """Rank correlation with exact patching over all cells."""
    pearson: float
    """Linear correlation with exact patching over all cells."""
    top_recall: float
    """Share of exact patching's ``top`` strongest cells among the method's ``top`` strongest."""
    top: int
    """How many strongest cells ``top_recall`` compares (5 unless asked)."""
    region_share: float
    """Share of the method's total |effect| inside the expected region (NaN when no region was given)."""
    time_fraction: float
    """The method's seconds over exact patching's (NaN when either result has no time)."""

    def to_json(self) -> dict:
        """Plain JSON (NaN as null)."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def pearson(a, b) -> float:
    """Pearson correlation over the cells where both are finite; NaN when either side is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 2 or a[keep].std() == 0 or b[keep].std() == 0:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def top_recall(exact: PatchResult, estimate: PatchResult, top: int = 5) -> float:
    """Share of ``exact``'s ``top`` strongest cells that are among ``estimate``'s ``top`` strongest."""
    top = min(top, len(exact.cells))
    if top < 1:
        return float("nan")
    return len(set(exact.ranking()[:top].tolist()) & set(estimate.ranking()[:top].tolist())) / top


def region_share(result: PatchResult, region) -> float:
    """Share of ``result``'s total |effect| in the cells where ``region`` (bool ``[cells]``) is True."""
    region = np.asarray(region, dtype=bool)
    if region.shape != (len(result.cells),):
        raise ValueError(f"region must be one bool per cell ({len(result.cells)}), got shape {region.shape}")
    strength = np.nan_to_num(np.abs(result.effects()))
    total = strength.sum()
    return float(strength[region].sum() / total) if total > 0 else float("nan")


def region_mask(result: PatchResult, start_s: float, end_s: float) -> np.ndarray:
    """``[cells]`` True for the frame cells that overlap ``[start_s, end_s)`` seconds (e.g. a word's span)."""
    return np.array([c.seconds is not None and c.seconds[0] < end_s and c.seconds[1] > start_s
                     for c in result.cells], dtype=bool)


def _same_cells(a: PatchResult, b: PatchResult) -> None:
    keys = lambda r: [(c.hook, c.frames, c.tokens, c.head, c.neuron) for c in r.cells]  # noqa: E731
    if keys(a) != keys(b):
        raise ValueError("the two results patch different cells; score methods on the same sweep (same hooks, "
                         "window and cells)")


def score_method(exact: PatchResult, estimate: PatchResult, region=None, top: int = 5) -> MethodScores:
    """Score ``estimate`` (any method's result) against ``exact`` (exact patching of the same cells)."""
    _same_cells(exact, estimate)
    a = np.array([c.value for c in exact.cells], dtype=np.float64)
    b = np.array([c.value for c in estimate.cells], dtype=np.float64)
    t_exact, t_estimate = exact.context.get("seconds"), estimate.context.get("seconds")
    time_fraction = float(t_estimate / t_exact) if t_exact and t_estimate is not None else float("nan")
    return MethodScores(estimate.method, len(a), spearman(a, b), pearson(a, b), top_recall(exact, estimate, top), top,
                        float("nan") if region is None else region_share(estimate, region), time_fraction)
