"""The group × group similarity matrix: mean cosine between the pooled representations of two labels.

Entry ``(a, b)`` is the mean cosine similarity over pairs of distinct items, one labelled ``a`` and one
``b``; the diagonal is the within-group similarity of each label (self-pairs excluded), so the matrix's
diagonal and off-diagonal means relate to :func:`otoscope.geometry.groups.group_similarity`'s within
and between figures (which weight every pair equally rather than every group). "Centered" subtracts
the mean over items first: raw cosines of model activations are often all close to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


@dataclass
class GroupMatrix:
    """Group × group mean cosine similarity at one hook."""

    hook: str
    """Hook name."""
    classes: list[str]
    """Row and column labels, sorted."""
    raw: np.ndarray
    """``[classes, classes]`` mean cosine of the pooled representations."""
    centered: np.ndarray
    """``[classes, classes]`` the same after subtracting the mean over items."""

    def to_json(self) -> dict:
        """JSON-ready dict."""
        return {"hook": self.hook, "classes": self.classes, "raw": self.raw.tolist(), "centered": self.centered.tolist()}


def mean_cosine_by_group(x: torch.Tensor, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """``[classes, classes]`` mean cosine over pairs of distinct items of ``x [items, d]`` by label."""
    unit = torch.nn.functional.normalize(x.double(), dim=-1)
    sim = (unit @ unit.T).numpy()  # [items, items]
    lab = np.asarray(labels, dtype=object)
    out = np.zeros((len(classes), len(classes)))
    for a, ca in enumerate(classes):
        for b, cb in enumerate(classes):
            block = sim[np.ix_(lab == ca, lab == cb)]
            if a == b:
                n = block.shape[0]
                out[a, b] = (block.sum() - np.trace(block)) / max(n * (n - 1), 1)
            else:
                out[a, b] = block.mean()
    return out


def group_matrix(pooled: torch.Tensor, labels: Sequence[str], hook: str) -> GroupMatrix:
    """:class:`GroupMatrix` of ``pooled [items, d_model]`` (one hook) for ``labels``."""
    classes = sorted(set(map(str, labels)))
    labels = [str(label) for label in labels]
    centered = pooled - pooled.mean(0, keepdim=True)
    return GroupMatrix(hook, classes, mean_cosine_by_group(pooled, labels, classes),
                       mean_cosine_by_group(centered, labels, classes))
