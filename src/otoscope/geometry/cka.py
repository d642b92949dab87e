"""Linear CKA between layers (and between models) with the minibatch unbiased-HSIC estimator.

Kornblith et al. (2019) define linear CKA as HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with
K = X Xᵀ, L = Y Yᵀ. Nguyen et al. (2021) make it run over any number of examples in constant memory:
average the *unbiased* HSIC estimator (Song et al. 2012) over minibatches, then take the ratio. The
unbiased estimator matters: the biased one inflates CKA for small minibatches.

Examples here are real encoder frames, sampled per clip (``frames_per_clip``) so that long clips do not
dominate and memory stays bounded whatever the corpus size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from otoscope.errors import OtoscopeError
from otoscope.geometry.collect import LayerActivations


def unbiased_hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Song et al.'s unbiased HSIC of two ``[n, n]`` Gram matrices (n >= 4)."""
    return _hsic_matrix(k[None], l[None])[0, 0]


def _hsic_matrix(ks: torch.Tensor, ls: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC for every pair: ``ks [a, n, n]``, ``ls [b, n, n]`` → ``[a, b]``."""
    n = ks.shape[-1]
    if n < 4:
        raise OtoscopeError(f"unbiased HSIC needs at least 4 examples per minibatch, got {n}.")
    eye = torch.eye(n, dtype=torch.bool, device=ks.device)
    ks = ks.masked_fill(eye, 0).double()
    ls = ls.masked_fill(eye, 0).double()
    trace = ks.flatten(1) @ ls.flatten(1).T  # tr(K̃ L̃) = Σ K̃ ⊙ L̃ (symmetric)
    sum_k, sum_l = ks.sum((1, 2)), ls.sum((1, 2))  # 1ᵀK̃1
    row_k, row_l = ks.sum(2), ls.sum(2)  # K̃1 [a, n]
    cross = row_k @ row_l.T  # 1ᵀK̃L̃1
    value = trace + torch.outer(sum_k, sum_l) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * cross
    return value / (n * (n - 3))


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Plain (biased, full-batch) linear CKA of ``x [n, d1]`` and ``y [n, d2]``: the textbook formula."""
    x = (x - x.mean(0)).double()
    y = (y - y.mean(0)).double()
    num = (y.T @ x).norm() ** 2
    return float(num / ((x.T @ x).norm() * (y.T @ y).norm()))


@dataclass
class CKAResult:
    """A CKA matrix with its row and column labels."""

    matrix: np.ndarray
    """``[rows, cols]`` CKA values in [0, 1] (up to estimator noise)."""
    rows: list[str]
    """Row labels (hooks of the first model)."""
    cols: list[str]
    """Column labels (hooks of the second model, or the same)."""
    n_examples: int
    """Frames used."""
    n_batches: int
    """Minibatches averaged."""

    def to_frame(self):
        """Tidy table: one row per (row, col) pair."""
        import pandas as pd

        return pd.DataFrame([{"row": r, "col": c, "cka": float(self.matrix[i, j])}
                             for i, r in enumerate(self.rows) for j, c in enumerate(self.cols)])


class _Accumulator:
    def __init__(self):
        self.xy = self.xx = self.yy = None
        self.batches = 0
        self.examples = 0

    def add(self, xs: torch.Tensor, ys: torch.Tensor) -> None:
        # xs [a, n, d1], ys [b, n, d2]
        kx = xs.double() @ xs.double().transpose(1, 2)
        ky = ys.double() @ ys.double().transpose(1, 2)
        xy, xx, yy = _hsic_matrix(kx, ky), _hsic_matrix(kx, kx).diagonal(), _hsic_matrix(ky, ky).diagonal()
        if self.xy is None:
            self.xy, self.xx, self.yy = xy, xx, yy
        else:
            self.xy, self.xx, self.yy = self.xy + xy, self.xx + xx, self.yy + yy
        self.batches += 1
        self.examples += xs.shape[1]

    def result(self) -> np.ndarray:
        if self.xy is None:
            raise OtoscopeError("no minibatch was complete; pass more clips or lower batch_frames.")
        denom = torch.sqrt(torch.outer(self.xx.clamp_min(1e-30), self.yy.clamp_min(1e-30)))
        return (self.xy / denom).numpy()


def _stream_cka(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], batch_frames: int) -> tuple[np.ndarray, int, int]:
    acc = _Accumulator()
    buf_x: list[torch.Tensor] = []
    buf_y: list[torch.Tensor] = []
    held = 0
    for x, y in pairs:  # x [a, frames, d1], y [b, frames, d2]
        buf_x.append(x)
        buf_y.append(y)
        held += x.shape[1]
        while held >= batch_frames:
            xs, ys = torch.cat(buf_x, 1), torch.cat(buf_y, 1)
            acc.add(xs[:, :batch_frames], ys[:, :batch_frames])
            buf_x, buf_y = [xs[:, batch_frames:]], [ys[:, batch_frames:]]
            held -= batch_frames
    if held >= 4 and acc.batches == 0:  # a small corpus: use what there is as one minibatch
        acc.add(torch.cat(buf_x, 1), torch.cat(buf_y, 1))
    return acc.result(), acc.examples, acc.batches


def _sample(acts: torch.Tensor, frames_per_clip: int | None, rng: np.random.Generator) -> torch.Tensor:
    n = acts.shape[1]
    if frames_per_clip is None or n <= frames_per_clip:
        return acts
    idx = torch.from_numpy(np.sort(rng.choice(n, frames_per_clip, replace=False)))
    return acts[:, idx]


def cka_layers(items: Iterable[LayerActivations], batch_frames: int = 256, frames_per_clip: int | None = 128,
               seed: int = 0) -> CKAResult:
    """Layer × layer linear CKA over the real frames of many clips (minibatch unbiased HSIC)."""
    rng = np.random.default_rng(seed)
    labels: list[str] = []

    def pairs():
        for item in items:
            labels[:] = item.layers
            x = _sample(item.acts, frames_per_clip, rng)
            yield x, x

    matrix, n, batches = _stream_cka(pairs(), batch_frames)
    return CKAResult(matrix, list(labels), list(labels), n, batches)


def cka_across_models(items_a: Iterable[LayerActivations], items_b: Iterable[LayerActivations], batch_frames: int = 256,
                      frames_per_clip: int | None = 128, seed: int = 0) -> CKAResult:
    """Linear CKA between every layer of model A and every layer of model B on the same clips and frames."""
    rng = np.random.default_rng(seed)
    rows: list[str] = []
    cols: list[str] = []

    def pairs():
        for a, b in zip(items_a, items_b):
            if a.acts.shape[1] != b.acts.shape[1]:
                raise OtoscopeError(f"{a.name}: the models give {a.acts.shape[1]} and {b.acts.shape[1]} real frames; "
                                    "cross-model CKA needs models with the same frame rate.")
            rows[:], cols[:] = a.layers, b.layers
            n = a.acts.shape[1]
            keep = torch.arange(n) if frames_per_clip is None or n <= frames_per_clip else \
                torch.from_numpy(np.sort(rng.choice(n, frames_per_clip, replace=False)))
            yield a.acts[:, keep], b.acts[:, keep]

    matrix, n, batches = _stream_cka(pairs(), batch_frames)
    return CKAResult(matrix, list(rows), list(cols), n, batches)
