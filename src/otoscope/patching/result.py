"""Named results of a patching sweep: cells with their scores, as JSON (``patch.json``) or a DataFrame."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from otoscope.stimuli.words import WordSpan

PATCH_FILES = ("patch.json",)  # marks a folder as an earlier run's output, which a new run may replace


@dataclass
class CellResult:
    """One patched cell and what the metric did."""

    hook: str
    """Canonical hook name."""
    layer: int | None
    """Block index (None outside the blocks)."""
    frames: tuple[int, int] | None
    """``[start, end)`` encoder frames patched (None for token cells)."""
    seconds: tuple[float, float] | None
    """The same span in seconds."""
    tokens: tuple[int, int] | None
    """``[start, end)`` decoder positions patched (None for frame cells)."""
    head: int | None
    """Attention head patched, or None for all."""
    neuron: int | None
    """Neuron (last-axis index) patched, or None for all."""
    value: float
    """The metric on the patched run (attribution: its first-order estimate)."""
    normalized: float
    """``(value − corrupt) / (clean − corrupt)``: 1 = clean behaviour, 0 = corrupt behaviour."""

    def to_json(self) -> dict:
        """The ``patch.json`` cell: hook, layer, frames, seconds, value, normalized (+ tokens/head/neuron when used)."""
        out = {"hook": self.hook, "layer": self.layer, "frames": _list(self.frames), "seconds": _list(self.seconds),
               "value": _num(self.value), "normalized": _num(self.normalized)}
        for key in ("tokens", "head", "neuron"):
            value = getattr(self, key)
            if value is not None:
                out[key] = _list(value) if key == "tokens" else value
        return out


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _list(span) -> list | None:
    return None if span is None else [round(v, 4) if isinstance(v, float) else int(v) for v in span]


def effects_of(normalized, direction: str) -> np.ndarray:
    """Cells' effects ``[cells]`` from their normalised scores: the share of the clean−corrupt difference a
    patch recovers (denoising, ``normalized``) or destroys (noising, ``1 − normalized``), so larger means the
    cell matters more in both directions; NaN (or None) where normalised scores are undefined stays NaN."""
    x = np.array([np.nan if v is None else v for v in normalized], dtype=np.float64)
    return x if direction == "denoising" else 1.0 - x


def ranking_of(effects) -> np.ndarray:
    """Indices of ``effects`` ``[cells]`` from the strongest to the weakest by magnitude, NaN last, ties in order."""
    strength = np.nan_to_num(np.abs(np.asarray(effects, dtype=np.float64)), nan=-1.0)
    return np.argsort(-strength, kind="stable")


@dataclass
class PatchResult:
    """A patching sweep: which direction, which metric, the unpatched scores and every cell's score."""

    model: str
    """Model name."""
    direction: str
    """``denoising`` (clean into corrupt) or ``noising`` (corrupt into clean)."""
    method: str
    """The method's name (``exact``, ``attribution``, ... : :data:`otoscope.patching.methods.METHODS`)."""
    metric: str
    """Metric name."""
    clean: float
    """The metric on the unpatched clean run."""
    corrupt: float
    """The metric on the unpatched corrupt run."""
    cells: list[CellResult] = field(default_factory=list)
    """Every cell, in sweep order (hooks in forward order, then positions)."""
    words: list[WordSpan] = field(default_factory=list)
    """Word spans of the clean clip (for labelling time axes), when known."""
    context: dict = field(default_factory=dict)
    """How the experiment was set up: clips, text, prompt, answer, wrong, alignment, config."""
    notes: list[str] = field(default_factory=list)
    """Warnings worth reading before the numbers (e.g. clean and corrupt score the same)."""

    def effects(self) -> np.ndarray:
        """Each cell's effect, ``[cells]`` (:func:`effects_of` its normalised scores)."""
        return effects_of([c.normalized for c in self.cells], self.direction)

    def ranking(self) -> np.ndarray:
        """Cell indices from the strongest effect to the weakest (:func:`ranking_of` its effects). The one ranking
        of cells that :meth:`strongest`, the CLI, the report and the method scores use."""
        return ranking_of(self.effects())

    def strongest(self, n: int = 5) -> list[CellResult]:
        """The ``n`` cells with the largest effect (recovered when denoising, destroyed when noising)."""
        return [self.cells[i] for i in self.ranking()[: max(int(n), 0)]]

    def to_json(self) -> dict:
        """The ``patch.json`` object: direction, metric, clean, corrupt, cells."""
        return {"direction": self.direction, "metric": self.metric, "clean": _num(self.clean),
                "corrupt": _num(self.corrupt), "cells": [c.to_json() for c in self.cells]}

    def to_frame(self):
        """One row per cell (tidy): hook, layer, frame/second/token spans, head, neuron, value, normalized,
        plus direction, method and metric columns."""
        import pandas as pd

        rows = []
        for c in self.cells:
            rows.append({"hook": c.hook, "layer": c.layer,
                         "frame_start": c.frames[0] if c.frames else None, "frame_end": c.frames[1] if c.frames else None,
                         "start_s": c.seconds[0] if c.seconds else None, "end_s": c.seconds[1] if c.seconds else None,
                         "token_start": c.tokens[0] if c.tokens else None, "token_end": c.tokens[1] if c.tokens else None,
                         "head": c.head, "neuron": c.neuron, "value": c.value, "normalized": c.normalized,
                         "direction": self.direction, "method": self.method, "metric": self.metric})
        frame = pd.DataFrame(rows)
        for col in ("layer", "frame_start", "frame_end", "token_start", "token_end", "head", "neuron"):
            frame[col] = frame[col].astype("Int64")
        return frame

    def meta(self) -> dict:
        """Everything but the cells: the set-up, word spans and notes (``patch_meta.json``)."""
        return {"model": self.model, "direction": self.direction, "method": self.method, "metric": self.metric,
                "clean": _num(self.clean), "corrupt": _num(self.corrupt), "n_cells": len(self.cells),
                "words": [asdict(w) for w in self.words], "context": self.context, "notes": self.notes}

    def save(self, out: str | Path, plot: bool = True, extra: dict[str, str] | None = None) -> list[Path]:
        """Write ``patch.json``, ``patch_meta.json``, (``plot``) ``heatmap.png`` and ``extra`` (file name → text)
        into folder ``out``, which is replaced as a whole (an earlier run's folder; see :data:`PATCH_FILES`)."""
        from otoscope._io import atomic_dir, check_output_dir, write_text_atomic

        out = check_output_dir(out, PATCH_FILES)
        names = ["patch.json", "patch_meta.json"]
        with atomic_dir(out, markers=PATCH_FILES) as folder:
            write_text_atomic(folder / names[0], json.dumps(self.to_json(), indent=1, allow_nan=False))
            write_text_atomic(folder / names[1], json.dumps(self.meta(), indent=1, allow_nan=False, default=str))
            if plot and self.cells:
                from otoscope.patching.plots import plot_heatmap

                names.append(plot_heatmap(self, folder / "heatmap.png").name)
            for name, text in (extra or {}).items():
                write_text_atomic(folder / name, text)
                names.append(name)
        return [out / name for name in names]


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    import pandas as pd

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 2:
        return float("nan")
    ra, rb = pd.Series(a[keep]).rank().to_numpy(), pd.Series(b[keep]).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass
class Agreement:
    """How well attribution patching tracks exact patching on the same cells."""

    spearman: float
    """Rank correlation of the two methods' scores over all cells."""
    pearson: float
    """Linear correlation over all cells."""
    max_abs_error: float
    """Largest |attribution − exact| of the normalised scores."""
    per_layer: dict[str, float] = field(default_factory=dict)
    """Spearman per hook (in forward order): where the linear approximation holds and where it breaks."""
    worst: list[dict] = field(default_factory=list)
    """The cells with the largest normalised error."""

    def to_json(self) -> dict:
        """Plain-JSON form."""
        return {"spearman": _num(self.spearman), "pearson": _num(self.pearson), "max_abs_error": _num(self.max_abs_error),
                "per_hook": {k: _num(v) for k, v in self.per_layer.items()}, "worst": self.worst}


def agreement(exact: PatchResult, estimate: PatchResult, worst: int = 5) -> Agreement:
    """Compare an attribution sweep with the exact sweep of the same cells."""
    if len(exact.cells) != len(estimate.cells):
        raise ValueError("agreement needs the same cells in both results")
    a = np.array([c.normalized for c in exact.cells])
    b = np.array([c.normalized for c in estimate.cells])
    keep = np.isfinite(a) & np.isfinite(b)
    pearson = float(np.corrcoef(a[keep], b[keep])[0, 1]) if keep.sum() > 1 and a[keep].std() and b[keep].std() else float("nan")
    per = {}
    for hook in dict.fromkeys(c.hook for c in exact.cells):
        idx = [i for i, c in enumerate(exact.cells) if c.hook == hook]
        per[hook] = spearman(a[idx], b[idx])
    err = np.abs(a - b)
    order = np.argsort(-np.nan_to_num(err, nan=-1))[:worst]
    worst_cells = [{"hook": exact.cells[i].hook, "frames": _list(exact.cells[i].frames), "exact": _num(a[i]),
                    "attribution": _num(b[i])} for i in order]
    return Agreement(spearman(a, b), pearson, float(np.nanmax(err)) if keep.any() else float("nan"), per, worst_cells)
