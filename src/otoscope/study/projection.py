"""A 2-D picture of the representations: the first two principal components of the pooled activations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Projection:
    """Items projected onto their top two principal components at one hook."""

    hook: str
    """Hook name."""
    coords: np.ndarray
    """``[items, 2]`` coordinates on PC1 and PC2."""
    explained: tuple[float, float]
    """Fraction of the variance along PC1 and PC2."""

    def to_json(self) -> dict:
        """JSON-ready dict."""
        return {"hook": self.hook, "coords": self.coords.round(5).tolist(), "explained": list(self.explained)}


def pca_2d(x: torch.Tensor, hook: str = "") -> Projection:
    """PCA of ``x [items, d_model]`` (centered, exact SVD) → :class:`Projection`. Signs follow the largest loading."""
    centered = x.double() - x.double().mean(0, keepdim=True)
    u, s, vh = torch.linalg.svd(centered, full_matrices=False)  # u [items, r], s [r], vh [r, d_model]
    top = vh[:2] if vh.shape[0] >= 2 else torch.cat([vh, torch.zeros(2 - vh.shape[0], vh.shape[1], dtype=vh.dtype)])
    largest = top.gather(1, top.abs().argmax(1, keepdim=True))  # [2, 1]
    sign = torch.where(largest >= 0, 1.0, -1.0).to(top.dtype)  # SVD signs are arbitrary: fix them
    coords = (centered @ (top * sign).T).numpy()  # [items, 2]
    total = float(s.pow(2).sum()) or 1.0
    var = [float(v) / total for v in s.pow(2)[:2]] + [0.0, 0.0]
    return Projection(hook, coords, (var[0], var[1]))
