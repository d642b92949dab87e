"""The patching entry points: :func:`patch` for one sweep, :func:`open_session` + :func:`sweep` for several.

>>> result = patch(model, "london.flac", "paris.flac", text=" My name is John and I live in",
...                answer=" London", wrong=" Paris", hooks="encoder.blocks.*.hook_resid_post", window=10)
>>> result.to_frame()          # one row per (layer, window): value, normalized, seconds, ...
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from otoscope.patching.cells import Cell
from otoscope.patching.config import PatchConfig, config_from
from otoscope.patching.inputs import prepare_pair
from otoscope.patching.metrics import make_metric, normalise
from otoscope.patching.result import CellResult, PatchResult
from otoscope.patching.session import PatchSession, ig_alphas
from otoscope.stimuli.words import WordSpan


def open_session(model, clean, corrupt, config: PatchConfig | None = None, *, text=None, prompt=None,
                 sample_rate=None, engine: str = "auto", progress: bool = False, **options) -> PatchSession:
    """Prepare a clean/corrupt pair and a metric, and cache both runs for any number of sweeps.

    ``text``/``prompt`` (Whisper): one value for both runs or a ``(clean, corrupt)`` tuple. ``options``
    override ``config`` fields (``metric``, ``answer``, ``wrong``, ``multi_token``, ``batch_size``, ``align``).
    """
    config = config_from(config, options)
    pair = prepare_pair(model, clean, corrupt, text=text, prompt=prompt, sample_rate=sample_rate, align=config.align)
    metric = make_metric(model, config.metric, config.answer, config.wrong, config.multi_token)
    session = PatchSession(model, pair, metric, batch_size=config.batch_size, engine=engine, progress=progress)
    session.context = {"clean": pair.clean.clips[0].name, "corrupt": pair.corrupt.clips[0].name, "text": text,
                       "prompt": prompt, "answer": _jsonable(config.answer), "wrong": _jsonable(config.wrong),
                       "alignment": pair.alignment, "seconds": round(pair.seconds, 4), "real_frames": pair.n_frames}
    return session


def _jsonable(value):
    return value if value is None or isinstance(value, str) else [int(v) for v in value]


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


def sweep(session: PatchSession, config: PatchConfig | None = None, words: Sequence[WordSpan] = (),
          **options) -> PatchResult:
    """Run one sweep (cells from ``config``) on an open session → :class:`PatchResult`."""
    config = config_from(config, options)
    names = session.hook_names(config.hooks)
    cells = session.cells(config, names)
    if config.method == "exact":
        values = session.exact(cells, config.direction, config.batch_size)
    elif config.method == "attribution":
        values = session.attribution(cells, config.direction)
    else:
        values = session.attribution(cells, config.direction, ig_alphas(config.ig_steps))
    clean, corrupt = session.clean_value, session.corrupt_value
    context = dict(session.context)
    context["config"] = {k: (v if isinstance(v, (str, int, float, bool, type(None))) else
                             (list(v) if isinstance(v, (list, tuple)) else getattr(v, "__name__", str(v))))
                         for k, v in vars(config).items()}
    return PatchResult(session.model.name, config.direction, config.method, session.metric.name, clean, corrupt,
                       cell_results(session.model, cells, values, clean, corrupt), list(words), context,
                       sanity_notes(session.metric.name, clean, corrupt))


def patch(model, clean, corrupt, config: PatchConfig | None = None, *, text=None, prompt=None, sample_rate=None,
          words: Sequence[WordSpan] = (), engine: str = "auto", progress: bool = False, **options) -> PatchResult:
    """Activation patching of one clean/corrupt pair → a :class:`PatchResult` (``.to_frame()`` for a DataFrame).

    ``options`` are :class:`PatchConfig` fields: ``hooks``, ``window``, ``stride``, ``window_unit``,
    ``token_window``, ``heads``, ``neurons``, ``direction``, ``method``, ``ig_steps``, ``metric``, ``answer``, ``wrong``,
    ``multi_token``, ``batch_size``, ``align``. ``words``: word spans of the clean clip, for plots.
    """
    config = config_from(config, options)
    session = open_session(model, clean, corrupt, config, text=text, prompt=prompt, sample_rate=sample_rate,
                           engine=engine, progress=progress)
    return sweep(session, config, words)
