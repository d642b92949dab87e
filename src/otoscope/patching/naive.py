"""The plain reference: patching the TransformerLens way, one full forward per cell at batch 1.

Nothing is reused but the source run's activations: every cell runs the whole model (encoder front end,
all layers, decoder, full logits) through ``model.run_with_hooks`` with one hook that writes the source
activation into the cell. The fast engine is tested against this cell by cell, and
``benchmarks/patching.py`` times it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from otoscope.models.inputs import ModelInputs
from otoscope.patching.cells import Cell, HookLayout, cell_mask
from otoscope.patching.metrics import Metric
from otoscope.patching.runner import read_logits


def inputs_with_rows(inputs: ModelInputs, rows: torch.Tensor | None) -> ModelInputs:
    """``inputs`` with one copy of the audio per decoder row in ``rows`` ``[rows, tokens]``."""
    if rows is None:
        return inputs
    n = rows.shape[0]
    return ModelInputs(inputs.clips * n, inputs.features.expand(n, *inputs.features.shape[1:]),
                       inputs.frame_mask.expand(n, -1), None, rows)


def source_activations(model, source_inputs: ModelInputs, metric: Metric, source_context, names: Sequence[str]):
    """The source run's activations at ``names`` (one full forward, as TransformerLens caches the clean run)."""
    rows = metric.readout(source_context).rows
    return model.run_with_cache(inputs_with_rows(source_inputs, rows), names_filter=list(names))[1]


def naive_patching(model, base_inputs: ModelInputs, source_inputs: ModelInputs, metric: Metric,
                   base_context, source_context, cells: Sequence[Cell], source_cache=None) -> np.ndarray:
    """Metric of the patched run for each cell: ``base`` run with ``source`` activations in the cell.

    ``source_cache`` (from :func:`source_activations`) is computed here when not given.
    """
    base_readout = metric.readout(base_context)
    if source_cache is None:
        names = list(dict.fromkeys(c.hook for c in cells))
        source_cache = source_activations(model, source_inputs, metric, source_context, names)
    base = inputs_with_rows(base_inputs, base_readout.rows)
    values = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        source = source_cache[cell.hook]
        mask = cell_mask([cell], HookLayout.of(model.points[cell.hook]), tuple(source.shape))  # [1, ...]

        def write(act, hook, mask=mask, source=source):
            return torch.where(mask.to(act.device), source, act)

        logits = model.run_with_hooks(base, fwd_hooks=[(cell.hook, write)])
        out = read_logits(logits, base_readout, 1) if base_readout.rows is not None else logits
        with torch.no_grad():
            values[i] = float(metric.score(out)[0])
    return values


def naive_run(model, inputs: ModelInputs, metric: Metric, context) -> float:
    """The metric on one unpatched run (full forward)."""
    readout = metric.readout(context)
    with torch.no_grad():
        logits = model(inputs_with_rows(inputs, readout.rows))
    out = read_logits(logits, readout, 1) if readout.rows is not None else logits
    return float(metric.score(out)[0])
