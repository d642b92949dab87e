"""Linear probes per layer: can a label be read off the mean-pooled representation linearly?

Multinomial logistic regression (L2-regularised, LBFGS) on standardised features, evaluated by
stratified k-fold cross-validation; each fold standardises with its own training statistics. Chance is
the majority-class rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from otoscope.errors import OtoscopeError
from otoscope.geometry.collect import LayerActivations


@dataclass
class ProbeResult:
    """Cross-validated probe accuracy per layer."""

    table: pd.DataFrame
    """One row per layer: accuracy (mean over folds), std, chance."""
    n_folds: int
    """Folds used."""
    classes: list[str]
    """Label classes."""


def stratified_folds(labels: np.ndarray, n_folds: int, seed: int = 0) -> list[np.ndarray]:
    """Test-index arrays of ``n_folds`` folds, each class spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(n_folds)]
    for cls in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == cls)[0])
        for k, i in enumerate(idx):
            folds[k % n_folds].append(int(i))
    return [np.array(sorted(f)) for f in folds]


def fit_logistic(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1e-2, steps: int = 100) -> torch.nn.Linear:
    """Multinomial logistic regression on ``x [n, d]``, ``y [n]`` (LBFGS, L2 penalty ``l2``)."""
    model = torch.nn.Linear(x.shape[1], n_classes, dtype=x.dtype)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y) + l2 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model


@dataclass
class FoldProbe:
    """A probe fitted on one fold's training part, with that part's standardisation."""

    test: np.ndarray
    """Indices it predicts."""
    mean: torch.Tensor
    """``[d]`` training mean."""
    std: torch.Tensor
    """``[d]`` training standard deviation (at least 1e-6)."""
    linear: torch.nn.Linear
    """The logistic-regression weights."""

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class indices ``[len(test)]`` for the rows ``x[test]`` of ``x [n, d]``."""
        return self.linear((x[self.test].double() - self.mean) / self.std).argmax(-1)


def fit_folds(x: torch.Tensor, y: torch.Tensor, n_classes: int, test_sets: Sequence[np.ndarray],
              l2: float = 1e-2) -> list[FoldProbe]:
    """One :class:`FoldProbe` per test set, each trained on the other rows of ``x [n, d]``, ``y [n]``."""
    x = x.double()
    probes = []
    for test in test_sets:
        train = np.setdiff1d(np.arange(len(y)), test)
        mean, std = x[train].mean(0), x[train].std(0).clamp_min(1e-6)
        probes.append(FoldProbe(test, mean, std, fit_logistic((x[train] - mean) / std, y[train], n_classes, l2)))
    return probes


def predict_folds(probes: Sequence[FoldProbe], x: torch.Tensor) -> torch.Tensor:
    """Held-out predictions ``[n]``: each row of ``x [n, d]`` by the probe that did not train on it (-1: no fold)."""
    pred = torch.full((x.shape[0],), -1, dtype=torch.long)
    for probe in probes:
        pred[probe.test] = probe.predict(x)
    return pred


def cross_val_predict(x: torch.Tensor, y: torch.Tensor, n_classes: int, test_sets: Sequence[np.ndarray],
                      l2: float = 1e-2) -> torch.Tensor:
    """Held-out predictions ``[n]`` for features ``x [n, d]`` and labels ``y [n]``: each test set is predicted by a
    probe trained on the rest, standardised with the training part's own statistics."""
    return predict_folds(fit_folds(x, y, n_classes, test_sets, l2), x)


def probe_layers(items: Sequence[LayerActivations], labels: Sequence[str] | None = None, n_folds: int = 5,
                 l2: float = 1e-2, seed: int = 0) -> ProbeResult:
    """Cross-validated linear-probe accuracy for the label at every layer (mean-pooled over real frames)."""
    labels = np.asarray(list(labels) if labels is not None else [item.label for item in items], dtype=object)
    classes, y_all = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise OtoscopeError("a probe needs at least two label classes.")
    smallest = int(np.bincount(y_all).min())
    folds = min(n_folds, smallest)
    if folds < 2:
        raise OtoscopeError(f"every class needs at least 2 clips for cross-validation; the smallest has {smallest}.")
    test_sets = stratified_folds(y_all, folds, seed)
    pooled = torch.stack([item.pooled() for item in items]).double()  # [clips, layers, d_model]
    y = torch.from_numpy(y_all).long()
    chance = float(np.bincount(y_all).max() / len(y_all))
    rows = []
    for layer in range(pooled.shape[1]):
        pred = cross_val_predict(pooled[:, layer], y, len(classes), test_sets, l2)
        accs = [float((pred[test] == y[test]).double().mean()) for test in test_sets]
        rows.append({"layer": layer, "hook": items[0].layers[layer], "accuracy": float(np.mean(accs)),
                     "std": float(np.std(accs)), "chance": chance})
    return ProbeResult(pd.DataFrame(rows), folds, [str(c) for c in classes])
