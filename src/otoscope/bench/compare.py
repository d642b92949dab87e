"""Two benchmark runs compared unit by unit: do their exact maps agree, and do the methods score the same?

A run is a ``bench run`` folder. Two runs of the same pairs under different settings — Whisper's whole
window against ``--encoder-seconds 5``, two library versions, two devices — should give the same exact
patching maps where the setting does not matter; :func:`compare_runs` measures how far they differ.

A unit is compared when both runs scored it (status ``ok``), its pair is the same pair in both task sets
(the same manifest entry, apart from file paths and the build's check scores, and the same audio bytes) and it sweeps the same cells
(hook, layer, frames, tokens). Anything else is listed in :attr:`RunComparison.skipped` with the reason.

Per unit: the two exact maps' Spearman and Pearson correlations (over the cells' effects, as
:func:`otoscope.patching.result.effects_of` orients them) and the overlap of their 5 strongest cells by
|effect|; and per method, its Spearman against exact in each run. :meth:`RunComparison.maps` and
:meth:`RunComparison.methods` average them per model and task.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    import pandas as pd

TOP = 5
"""How many strongest cells the exact maps' overlap compares."""


@dataclass
class RunComparison:
    """Two runs' shared units compared; ``units`` has one row per unit (a pandas DataFrame)."""

    a: str
    """The first run's folder."""
    b: str
    """The second run's folder."""
    units: "pd.DataFrame"
    """``pandas.DataFrame``: model, task, pair, direction, cells, exact_spearman, exact_pearson, exact_top_overlap,
    and per method ``spearman_a:<method>`` and ``spearman_b:<method>`` (its Spearman against exact in each run)."""
    method_names: list[str] = field(default_factory=list)
    """Methods both runs scored on every compared unit, in the first run's order."""
    skipped: list[dict] = field(default_factory=list)
    """``{"unit", "reason"}`` per unit found in only one run or not comparable."""

    def maps(self):
        """Per model and task: units compared and the exact maps' agreement (means, and the lowest Spearman)."""
        import pandas as pd

        if self.units.empty:
            return pd.DataFrame(columns=["model", "task", "units", "exact_spearman", "exact_spearman_min",
                                         "exact_pearson", "exact_top_overlap"])
        grouped = self.units.groupby(["model", "task"], sort=False)
        return grouped.agg(units=("pair", "size"), exact_spearman=("exact_spearman", "mean"),
                           exact_spearman_min=("exact_spearman", "min"), exact_pearson=("exact_pearson", "mean"),
                           exact_top_overlap=("exact_top_overlap", "mean")).reset_index()

    def methods(self):
        """Per model, task and method: its mean Spearman against exact in each run and the shift (b − a)."""
        import pandas as pd

        rows = []
        for (model, task), group in self.units.groupby(["model", "task"], sort=False):
            for method in self.method_names:
                a, b = group[f"spearman_a:{method}"], group[f"spearman_b:{method}"]
                rows.append({"model": model, "task": task, "method": method, "units": len(group),
                             "spearman_a": a.mean(), "spearman_b": b.mean(), "spearman_shift": (b - a).mean(),
                             "largest_unit_shift": (b - a).abs().max()})
        return pd.DataFrame(rows, columns=["model", "task", "method", "units", "spearman_a", "spearman_b",
                                           "spearman_shift", "largest_unit_shift"])

    def to_json(self) -> dict:
        """Plain JSON: both summaries, the unit rows and what was skipped (NaN as null)."""
        def records(frame):
            return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
                    for row in frame.to_dict("records")]

        return {"a": self.a, "b": self.b, "methods_compared": self.method_names, "maps": records(self.maps()),
                "methods": records(self.methods()), "units": records(self.units), "skipped": self.skipped}


def _unit_files(root: Path) -> dict[str, Path]:
    units = root / "units"
    return {str(p.relative_to(units)): p for p in sorted(units.glob("*/*/*.json"))} if units.is_dir() else {}


def _pair_entries(root: Path) -> dict[tuple[str, str], dict]:
    """``(task, pair id)`` → the manifest entry with the audio's sha256 in place of its paths."""
    manifest = root / "suite" / "manifest.json"
    if not manifest.is_file():
        raise OtoscopeError(f"{root} has no suite/manifest.json; pass a folder written by 'otoscope bench run'.")
    entries = {}
    for task, data in json.loads(manifest.read_text()).get("tasks", {}).items():
        for pair in data.get("pairs", []):
            entry = {k: v for k, v in pair.items() if k not in ("clean", "corrupt")}
            # the build's check values are the check models' own scores, not part of the pair
            entry["details"] = {k: v for k, v in (entry.get("details") or {}).items() if k != "check"}
            for side in ("clean", "corrupt"):
                audio = manifest.parent / pair[side]
                entry[side] = hashlib.sha256(audio.read_bytes()).hexdigest() if audio.is_file() else None
            entries[(task, pair["id"])] = entry
    return entries


def _effects(unit: dict, method: str) -> np.ndarray:
    from otoscope.patching.result import effects_of

    return effects_of(unit["methods"][method]["normalized"], unit["direction"])


def _top(effects: np.ndarray, top: int) -> set[int]:
    from otoscope.patching.result import ranking_of

    return set(ranking_of(effects)[:top].tolist())  # the ranking PatchResult.ranking and the method scores use


def _cell_keys(unit: dict) -> list:
    return [(c["hook"], c["layer"], tuple(c["frames"] or ()), tuple(c["tokens"] or ())) for c in unit["cells"]]


def _why_not(unit_a: dict, unit_b: dict, pair_a, pair_b) -> str | None:
    if unit_a["status"] != "ok" or unit_b["status"] != "ok":
        return f"not scored in both runs ({unit_a['status']} / {unit_b['status']})"
    if pair_a is None or pair_b is None:
        return "its pair is missing from a run's manifest"
    if pair_a != pair_b:
        return "a different pair in the two task sets (manifest entry or audio differ)"
    if _cell_keys(unit_a) != _cell_keys(unit_b):
        return "different cells (another --window or hooks)"
    return None


def compare_runs(a: str | Path, b: str | Path) -> RunComparison:
    """Compare the units two ``bench run`` folders share (module docstring); ``b`` is measured against ``a``."""
    import pandas as pd

    from otoscope.patching.result import spearman
    from otoscope.patching.scores import pearson

    a, b = Path(a), Path(b)
    files_a, files_b = _unit_files(a), _unit_files(b)
    for root, files in ((a, files_a), (b, files_b)):
        if not files:
            raise OtoscopeError(f"{root} holds no unit files (units/MODEL/TASK/*.json); pass a folder written by "
                                "'otoscope bench run'.")
    pairs_a, pairs_b = _pair_entries(a), _pair_entries(b)
    skipped = [{"unit": rel, "reason": f"only in {root}"} for rel, root in
               [(r, a) for r in files_a if r not in files_b] + [(r, b) for r in files_b if r not in files_a]]
    rows, compared = [], []
    for rel in (r for r in files_a if r in files_b):
        unit_a, unit_b = json.loads(files_a[rel].read_text()), json.loads(files_b[rel].read_text())
        key = (unit_a["task"], unit_a["pair"])
        reason = _why_not(unit_a, unit_b, pairs_a.get(key), pairs_b.get(key))
        if reason:
            skipped.append({"unit": rel, "reason": reason})
            continue
        x, y = _effects(unit_a, "exact"), _effects(unit_b, "exact")
        top = min(TOP, len(x))
        rows.append({"model": unit_a["model"], "task": unit_a["task"], "pair": unit_a["pair"],
                     "direction": unit_a["direction"], "cells": len(x), "exact_spearman": spearman(x, y),
                     "exact_pearson": pearson(x, y), "exact_top_overlap": len(_top(x, top) & _top(y, top)) / top})
        compared.append((unit_a, unit_b))
    methods = [m for m in (compared[0][0]["scores"] if compared else [])
               if m != "exact" and all(m in ua["scores"] and m in ub["scores"] for ua, ub in compared)]
    for row, (unit_a, unit_b) in zip(rows, compared):
        for method in methods:
            for side, unit in (("a", unit_a), ("b", unit_b)):
                value = unit["scores"][method]["spearman"]
                row[f"spearman_{side}:{method}"] = float("nan") if value is None else value
    if not rows:
        reasons = sorted({s["reason"] for s in skipped})
        raise OtoscopeError(f"{a} and {b} share no comparable unit ({'; '.join(reasons)[:200]}); compare runs of the "
                            "same task set (same --seed and pairs) and the same --window.")
    return RunComparison(str(a), str(b), pd.DataFrame(rows), methods, skipped)
