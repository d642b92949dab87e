"""``results.json``: the unit files of a run summarised per task, model and method."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from otoscope.bench.config import SUITE_NAME, SUITE_VERSION
from otoscope.bench.methods import METHODS
from otoscope.bench.suite import Suite
from otoscope.bench.tasks import TASKS
from otoscope.patching.result import effects_of

SCORE_KEYS = ("spearman", "pearson", "top_recall", "region_share", "time_fraction")
"""The scores of :class:`otoscope.patching.scores.MethodScores` averaged per task, model and method."""


def _mean(values) -> float | None:
    xs = [v for v in values if v is not None and math.isfinite(v)]
    return round(float(np.mean(xs)), 4) if xs else None


def _units(out: Path, model: str, task: str) -> list[dict]:
    folder = out / "units" / model.replace("/", "_") / task
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def _grounding(units: list[dict]) -> list[dict] | None:
    layers: dict[int, dict[str, list]] = {}
    for u in units:
        for row in u.get("grounding") or []:
            entry = layers.setdefault(row["layer"], {"gc": [], "delta_audio": [], "delta_text": []})
            for key in entry:
                entry[key].append(row[key])
    if not layers:
        return None
    # n: pairs where gc is defined at the layer (both Δ >= 0, their sum not ~0); the Δs are means over all pairs
    return [{"layer": k, **{key: _mean(v) for key, v in entry.items()},
             "n": sum(v is not None and math.isfinite(v) for v in entry["gc"]), "pairs": len(entry["gc"])}
            for k, entry in sorted(layers.items())]


def _example(unit: dict) -> dict:
    """The heatmap data of one unit: cell coordinates and every method's effect per cell."""
    return {"pair": unit["pair"], "direction": unit["direction"],
            "cells": [{"hook": c["hook"], "layer": c["layer"], "frames": c["frames"], "seconds": c["seconds"],
                       "tokens": c["tokens"]} for c in unit["cells"]], "inside": unit["inside"],
            "effects": {m: [round(v, 4) if math.isfinite(v) else None
                            for v in effects_of(r["normalized"], unit["direction"]).tolist()]
                        for m, r in unit["methods"].items()}}


def summarise(out: str | Path, suite: Suite, config, windowed: tuple[str, ...] | None = None) -> dict:
    """The ``results.json`` object of the run in ``out``. ``windowed``: the run's models with a fixed encoder
    window (Whisper), which ``config.window_seconds`` applies to; None: every model of ``config``."""
    windowed = tuple(config.models) if windowed is None else tuple(windowed)
    out = Path(out)
    tasks = {}
    for name, ts in suite.tasks.items():
        task = TASKS[name]
        per_model = {}
        for model in config.models:
            units = _units(out, model, name)
            if not units:
                continue
            ok = [u for u in units if u["status"] == "ok"]
            methods = {}
            for method in config.methods:
                rows = [u["scores"][method] for u in ok if method in u["scores"]]
                by_direction = {d: [u["scores"][method] for u in ok if u["direction"] == d and method in u["scores"]]
                                for d in config.directions(name)}
                methods[method] = {**{k: _mean(r[k] for r in rows) for k in SCORE_KEYS}, "n": len(rows),
                                   "seconds": _mean(u["methods"][method]["seconds"] for u in ok if method in u["methods"]),
                                   "spearman_by_direction": {d: _mean(r["spearman"] for r in v)
                                                             for d, v in by_direction.items()}}
            per_model[model] = {"units": len(ok), "dropped": len(units) - len(ok),
                                "dropped_reasons": [{"pair": u["pair"], "reason": u["reason"]} for u in units
                                                    if u["status"] != "ok"],
                                "clean": _mean(u["clean"] for u in ok), "corrupt": _mean(u["corrupt"] for u in ok),
                                "methods": methods, "grounding": _grounding(ok),
                                "example": _example(ok[0]) if ok else None}
        dropped_at_build: dict[str, int] = {}
        for d in ts.dropped:
            dropped_at_build[d["model"]] = dropped_at_build.get(d["model"], 0) + 1
        tasks[name] = {"title": task.title, "question": task.question, "directions": list(config.directions(name)),
                       "hooks": task.hooks, "pairs": len(ts.pairs), "candidates": ts.candidates,
                       "dropped_at_build": dropped_at_build, "models": per_model}
    overall = {}
    for model in config.models:
        overall[model] = {}
        for method in config.methods:
            rows = [t["models"][model]["methods"][method] for t in tasks.values() if model in t["models"]]
            overall[model][method] = {k: _mean(r[k] for r in rows) for k in SCORE_KEYS}
    return {"suite": {"name": SUITE_NAME, "version": SUITE_VERSION, "seed": config.seed, "quick": config.quick,
                      "pairs_per_task": suite.config.pairs_per_task, "frames_per_cell": config.frames_per_cell,
                      "encoder_seconds": config.window_seconds if windowed else None,
                      "windowed_models": list(windowed)},
            "models": list(config.models), "methods": list(config.methods),
            "method_descriptions": {m: METHODS[m].description for m in config.methods},
            "tasks": tasks, "overall": overall}
