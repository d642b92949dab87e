"""Per-layer activation norms over real frames."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from otoscope.geometry.collect import LayerActivations


def layer_norms(items: Iterable[LayerActivations]) -> pd.DataFrame:
    """Tidy table: one row per (clip, layer) with mean / median / max L2 norm over the clip's real frames."""
    rows = []
    for item in items:
        norms = item.acts.norm(dim=-1)  # [layers, frames_real]
        for layer, (hook, values) in enumerate(zip(item.layers, norms)):
            rows.append({"clip": item.name, "layer": layer, "hook": hook, "mean_norm": values.mean().item(),
                         "median_norm": values.median().item(), "max_norm": values.max().item(),
                         "frames": int(values.numel())})
    return pd.DataFrame(rows)


def summarise_norms(table: pd.DataFrame) -> pd.DataFrame:
    """Per layer: mean over clips of each clip's mean norm, and its standard deviation."""
    grouped = table.groupby(["layer", "hook"], sort=True)["mean_norm"]
    return grouped.agg(["mean", "std"]).reset_index().rename(columns={"mean": "mean_norm", "std": "std_norm"})
