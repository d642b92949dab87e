"""Which SAE latents prefer one label? Selectivity = mean activation on the label / mean activation elsewhere.

Per item, a latent's activation is its mean over the item's positions (frames or tokens). For label ``L``
and latent ``j``: ``selectivity = mean over items labelled L / max(mean over the other items, floor)``,
where ``floor = 1% of the latent's mean over all items`` keeps a latent that never fires elsewhere finite
(at most ``100 × items / items of L``). Latents that never fire are left out. The pilot's figures are
the counts of latents with selectivity above 2 and above 4 per label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch

FLOOR = 0.01  # fraction of a latent's overall mean below which "elsewhere" counts as that floor
THRESHOLDS = (2.0, 4.0)


@dataclass
class Selectivity:
    """Per-label selectivity of every live latent."""

    table: pd.DataFrame
    """One row per (label, latent): label, latent, mean_on, mean_off, selectivity, fires_on (fraction of the
    label's items on which the latent is active)."""
    counts: pd.DataFrame
    """One row per label: label, items, above_2, above_4, live (latents that fire at all), and common_above_2,
    common_above_4 (the same counts among latents active on at least ``min_fire`` of the label's items)."""
    top: dict[str, list[int]] = field(default_factory=dict)
    """The most selective latents of each label, best first."""


def selectivity(means: torch.Tensor, labels: Sequence[str], top_n: int = 3, min_fire: float = 0.5) -> Selectivity:
    """:class:`Selectivity` of latents from ``means [items, d_sae]`` (see the module docstring).

    The top latents of a label are those of highest selectivity among the latents active on at least
    ``min_fire`` of its items (a latent firing on one item of the label is not a feature of the label).
    """
    m = means.double().numpy()
    lab = np.asarray([str(x) for x in labels], dtype=object)
    overall = m.mean(0)  # [d_sae]
    live = np.nonzero(overall > 0)[0]
    rows, counts, top = [], [], {}
    for label in sorted(set(lab)):
        on, off = m[lab == label][:, live], m[lab != label][:, live]
        mean_on, mean_off = on.mean(0), off.mean(0)
        ratio = mean_on / np.maximum(mean_off, FLOOR * overall[live])
        fires = (on > 0).mean(0)
        rows.append(pd.DataFrame({"label": label, "latent": live, "mean_on": mean_on, "mean_off": mean_off,
                                  "selectivity": ratio, "fires_on": fires}))
        counts.append({"label": label, "items": int((lab == label).sum()), "above_2": int((ratio > THRESHOLDS[0]).sum()),
                       "above_4": int((ratio > THRESHOLDS[1]).sum()), "live": int(len(live)),
                       "common_above_2": int(((ratio > THRESHOLDS[0]) & (fires >= min_fire)).sum()),
                       "common_above_4": int(((ratio > THRESHOLDS[1]) & (fires >= min_fire)).sum())})
        order = np.argsort(-ratio, kind="stable")
        top[label] = [int(live[i]) for i in order if fires[i] >= min_fire][:top_n]
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return Selectivity(table, pd.DataFrame(counts), top)
