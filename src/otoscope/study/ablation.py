"""Ablating one SAE latent and measuring what the label probe loses.

Removing latent ``j`` from an activation ``x`` means subtracting its decoded contribution,
``x − z_j(x) · W_dec[j]`` (the SAE's error term stays, so only that latent's part goes). Pooled over an
item's positions this is ``pooled − mean_j · W_dec[j]``, with ``mean_j`` the latent's mean activation
over the item, so no model needs to run again. The cross-validated probes trained on intact activations
then read the ablated test items: ``accuracy_ablated`` (and ``recall_ablated``, for the latent's own label)
says how much the label readout *uses* the latent; ``drop`` is the loss against the intact items.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from otoscope.geometry.probe import fit_folds, predict_folds, stratified_folds


def ablation_table(pooled: torch.Tensor, means: torch.Tensor, w_dec: torch.Tensor, labels: Sequence[str],
                   latents: Sequence[tuple[str, int]], n_folds: int = 5, l2: float = 1e-2, seed: int = 0) -> pd.DataFrame:
    """One row per ``(label, latent)``: probe accuracy and label recall, intact vs with the latent ablated.

    ``pooled [items, d_model]`` are the hook's pooled activations, ``means [items, d_sae]`` the latents' mean
    activations per item and ``w_dec [d_sae, d_model]`` the SAE's decoder (in the activations' units).
    """
    classes, y_np = np.unique(np.asarray([str(x) for x in labels], dtype=object), return_inverse=True)
    y = torch.from_numpy(y_np).long()
    folds = stratified_folds(y_np, min(n_folds, int(np.bincount(y_np).min())), seed)
    x = pooled.double()
    probes = fit_folds(x, y, len(classes), folds, l2)
    base = predict_folds(probes, x)
    rows = []
    for label, latent in latents:
        ablated = x - means[:, latent, None].double() * w_dec[latent].double()  # [items, d_model]
        pred = predict_folds(probes, ablated)
        mine = y == int(np.nonzero(classes == label)[0][0])
        row = {"label": label, "latent": int(latent), "accuracy": _acc(base, y), "accuracy_ablated": _acc(pred, y),
               "recall": _acc(base[mine], y[mine]), "recall_ablated": _acc(pred[mine], y[mine])}
        row["drop"] = row["accuracy"] - row["accuracy_ablated"]
        rows.append(row)
    return pd.DataFrame(rows)


def _acc(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred == y).double().mean()) if len(y) else float("nan")
