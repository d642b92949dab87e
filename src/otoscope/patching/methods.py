"""Localization methods: each turns an open session and a sweep's configuration into a :class:`PatchResult`.

Every method has the same signature, ``method(session, config, words=()) -> PatchResult``, and fills the same
cells, so any two results of one sweep compare cell by cell (:func:`otoscope.patching.scores.score_method`).
:data:`METHODS` maps each name to its function; ``sweep(session, method=NAME)`` runs it.

* ``exact`` — the reference: the model run once per cell (:meth:`PatchSession.exact`).
* ``attribution`` — the first-order estimate from one forward and one backward pass (AtP, Nanda 2023).
* ``attribution-ig`` — its gradient averaged over inputs interpolated between the two runs (EAP-IG).
* ``atp-qk`` — attribution with AtP*'s QK fix (Kramár et al. 2024): the attention patterns of the first
  attention the patch enters recomputed exactly on its key and query side (:mod:`otoscope.patching.atp`).
* ``atp-star`` — the QK fix plus GradDrop: the magnitude averaged over backward passes that each drop the
  gradient through one later layer, against cancellation between paths.
* ``two-point`` — the tangent (``attribution``) for the weak cells, the gradient at the midpoint of the input
  path (integrated gradients with one step, α = ½) for the strong ones: those whose midpoint estimate is at least
  ``strong_share`` of the strongest's. Two forward and backward passes.
* ``hybrid`` — cells ranked by the ``two-point`` estimate, the ``top_k`` strongest re-measured exactly.
* ``random`` — a random ranking (seeded): the floor every method must beat.

Each result's ``context["seconds"]`` is the method's own time with the session's clean and corrupt runs
already cached (set-up outside the clock, the same for every method) — work it reused from an earlier
method on the same session (a gradient pass, exact cells: :meth:`PatchSession.memo`) counted at what it
cost when first computed, so the time is what the method costs alone — and ``context["exact_cells"]`` lists
the cells whose value is exact (all for ``exact``, the ``top_k`` for ``hybrid``, none for the estimates).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from otoscope.patching.cells import Cell
from otoscope.patching.config import METHODS as METHOD_NAMES
from otoscope.patching.config import SweepConfig
from otoscope.patching.metrics import normalise
from otoscope.patching.result import CellResult, PatchResult
from otoscope.patching.session import ig_alphas

if TYPE_CHECKING:
    from otoscope.patching.session import PatchSession
    from otoscope.stimuli.words import WordSpan

Values = Callable[["PatchSession", list, SweepConfig], "tuple[np.ndarray, list[int]]"]


def cell_results(model, cells: Sequence[Cell], values: np.ndarray, clean: float, corrupt: float) -> list[CellResult]:
    """Cells and their metric values → :class:`CellResult` rows with spans in frames, seconds or tokens."""
    geometry = model.geometry
    normalized = normalise(values, clean, corrupt)
    out = []
    for cell, value, norm in zip(cells, values, normalized):
        frames = seconds = tokens = None
        if cell.axis == "frames":
            frames = (cell.start, cell.end)
            seconds = tuple(round(float(s), 4) for s in geometry.convert([cell.start, cell.end], "frames", "seconds"))
        elif cell.axis == "tokens":
            tokens = (cell.start, cell.end)
        out.append(CellResult(cell.hook, cell.layer, frames, seconds, tokens, cell.head, cell.neuron,
                              float(value), float(norm)))
    return out


def sanity_notes(metric_name: str, clean: float, corrupt: float) -> list[str]:
    """Warnings about an experiment whose unpatched runs make the scores hard to read."""
    notes = []
    if not np.isfinite(clean - corrupt) or abs(clean - corrupt) < 1e-6:
        notes.append(f"clean and corrupt give the same {metric_name} ({clean:.4g}): the pair does not change it, so "
                     "normalised scores are undefined (NaN). Check the answer or pick a pair that differs.")
    elif metric_name == "logit_diff" and clean < 0:
        notes.append(f"the clean run prefers the wrong answer (logit diff {clean:.3f}); check answer and wrong.")
    return notes


# ---------------------------------------------------------------------------------------------- the methods
def _exact(session, cells, config):
    return session.exact(cells, config.direction, config.batch_size), list(range(len(cells)))


def _attribution(session, cells, config):
    return session.attribution(cells, config.direction), []


def _attribution_ig(session, cells, config):
    return session.attribution(cells, config.direction, ig_alphas(config.ig_steps)), []


def _atp_qk(session, cells, config):
    from otoscope.patching.atp import qk_fixed

    return qk_fixed(session, cells, config.direction), []


def _atp_star(session, cells, config):
    from otoscope.patching.atp import atp_star

    return atp_star(session, cells, config.direction, graddrop=True), []


def _two_point(session, cells, config):
    """The tangent where the midpoint estimate is weak, the midpoint estimate where it is strong.

    The tangent at the run patched into is accurate for small effects (its error grows with the square of
    the step) but flat before a threshold; the gradient halfway along the input path sees the threshold but
    averages over every cell moving at once, which scrambles the order of the small effects.
    """
    tangent = session.attribution(cells, config.direction)
    midpoint = session.attribution(cells, config.direction, ig_alphas(1))
    base = _base_value(session, config.direction)
    strength = np.abs(midpoint - base)
    strong = strength >= config.strong_share * strength.max() if strength.size and strength.max() > 0 else strength > 0
    return np.where(strong, midpoint, tangent), []


def _base_value(session, direction: str) -> float:
    return session.corrupt_value if direction == "denoising" else session.clean_value


def _hybrid(session, cells, config):
    """The two-point estimate for every cell, then the ``top_k`` with the largest estimated effect measured exactly."""
    values, _ = _two_point(session, cells, config)
    base = _base_value(session, config.direction)
    order = np.argsort(-np.abs(values - base), kind="stable")[: config.top_k]
    top = sorted(int(i) for i in order)
    values[top] = session.exact([cells[i] for i in top], config.direction, config.batch_size)
    return values, top


def _random(session, cells, config):
    """Scores drawn uniformly between the two runs' values: a ranking that knows nothing."""
    rng = np.random.default_rng(config.seed)
    base, source = session.corrupt_value, session.clean_value
    if config.direction == "noising":
        base, source = source, base
    return base + rng.random(len(cells)) * (source - base), []


def _method(name: str, values: Values, doc: str):
    def run(session: "PatchSession", config: SweepConfig | None = None,
            words: Sequence["WordSpan"] = ()) -> PatchResult:
        config = dataclasses.replace(config or SweepConfig(), method=name)
        names = session.hook_names(config.hooks)
        cells = session.cells(config, names)  # caches the clean and corrupt runs: outside the clock
        start, reused = time.perf_counter(), session.charged
        out, exact_cells = values(session, cells, config)
        seconds = time.perf_counter() - start + session.charged - reused  # what the method costs alone
        return _result(session, config, cells, out, words, seconds, exact_cells)

    run.__name__ = name.replace("-", "_")
    run.__doc__ = f"{doc}: ``(session, config, words=()) -> PatchResult`` (see :mod:`otoscope.patching.methods`)."
    return run


def _result(session, config, cells, values, words, seconds, exact_cells) -> PatchResult:
    clean, corrupt = session.clean_value, session.corrupt_value
    context = dict(session.context)
    context["config"] = {k: (v if isinstance(v, (str, int, float, bool, type(None))) else
                             (list(v) if isinstance(v, (list, tuple)) else getattr(v, "__name__", str(v))))
                         for k, v in vars(config).items()}
    context["seconds"] = round(seconds, 4)
    context["exact_cells"] = exact_cells
    return PatchResult(session.model.name, config.direction, config.method, session.metric.name, clean, corrupt,
                       cell_results(session.model, cells, values, clean, corrupt), list(words), context,
                       sanity_notes(session.metric.name, clean, corrupt))


METHODS: dict[str, Callable[..., PatchResult]] = {
    "exact": _method("exact", _exact, "Exact patching, one run per cell (the reference)"),
    "attribution": _method("attribution", _attribution, "Attribution patching (first-order, one backward pass)"),
    "attribution-ig": _method("attribution-ig", _attribution_ig, "Attribution with integrated gradients"),
    "atp-qk": _method("atp-qk", _atp_qk, "AtP* QK fix: attention patterns recomputed exactly, the rest first-order"),
    "atp-star": _method("atp-star", _atp_star, "AtP*: the QK fix plus GradDrop"),
    "two-point": _method("two-point", _two_point, "The tangent for weak cells, the midpoint gradient for strong ones"),
    "hybrid": _method("hybrid", _hybrid, "The two-point ranking, the top_k cells re-measured exactly"),
    "random": _method("random", _random, "A random ranking (the floor)"),
}
"""Every localization method by name: ``METHODS[name](session, config, words=()) -> PatchResult``."""

CHEAP = ("attribution", "attribution-ig", "atp-qk", "atp-star", "two-point", "hybrid")
"""The methods meant to cost a fraction of exact patching (random is the floor, not a method to use)."""

assert tuple(METHODS) == METHOD_NAMES, "config.METHODS lists the registry's names"


def run_method(session: "PatchSession", config: SweepConfig, words: Sequence["WordSpan"] = ()) -> PatchResult:
    """The sweep ``config`` by its ``method`` (what :func:`otoscope.patching.sweep` calls)."""
    return METHODS[config.method](session, config, words)
