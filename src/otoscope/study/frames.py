"""Per-frame (or per-token) probes: can the label be read off a single position, not only the clip's mean?

Up to ``max_positions`` evenly spaced positions are taken from each item; the folds split *items*, never
positions of one item, so a probe is always tested on clips (or prompts) it did not see.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from otoscope.geometry.collect import LayerActivations
from otoscope.geometry.probe import cross_val_predict, stratified_folds


def sample_positions(n: int, k: int) -> np.ndarray:
    """Up to ``k`` evenly spaced indices into ``n`` positions (all of them when ``n <= k``)."""
    return np.arange(n) if n <= k else np.unique(np.linspace(0, n - 1, k).round().astype(int))


def position_probe(items: Sequence[LayerActivations], labels: Sequence[str], n_folds: int = 5, max_positions: int = 16,
                   l2: float = 1e-2, seed: int = 0) -> pd.DataFrame:
    """Cross-validated probe accuracy on single positions, per hook. Columns: hook, accuracy, chance, positions."""
    classes, y_items = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
    folds = min(n_folds, int(np.bincount(y_items).min()))
    item_folds = stratified_folds(y_items, folds, seed)
    picks = [sample_positions(item.acts.shape[1], max_positions) for item in items]
    owner = np.concatenate([np.full(len(p), i) for i, p in enumerate(picks)])  # [rows] item of each row
    y = torch.from_numpy(y_items[owner]).long()
    test_sets = [np.nonzero(np.isin(owner, f))[0] for f in item_folds]
    chance = float(np.bincount(y.numpy()).max() / len(y))
    rows = []
    for layer, hook in enumerate(items[0].layers):
        x = torch.cat([item.acts[layer, p] for item, p in zip(items, picks)])  # [rows, d_model]
        pred = cross_val_predict(x, y, len(classes), test_sets, l2)
        rows.append({"hook": hook, "accuracy": float((pred == y).double().mean()), "chance": chance, "positions": len(y)})
    return pd.DataFrame(rows)
