"""Plain full-matrix reference for :mod:`otoscope.features`: every statistic from the dense ``[frames, d_sae]``
activation matrix with loops and sorts a reader can check by eye. The tests and the benchmark compare the
streaming pass against it; it is far too slow and large for real corpora.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from otoscope.features.select import pack_key, priority


@torch.no_grad()
def dense_codes(model, sae, corpus, hook: str | None = None):
    """``(Z [frames, d_sae] float32, clip [frames], frame [frames])`` over the real frames of every clip, one clip
    per forward pass (clips ≤ 30 s)."""
    from otoscope.features.run import hook_activations
    from otoscope.sae.corpus import open_corpus

    hook = hook or sae.cfg.hook_name
    corpus = open_corpus(corpus)
    zs, clips, frames = [], [], []
    for item in corpus:
        x, mask = hook_activations(model, model.clips([item.audio]), hook)
        x = x[0, mask[0]].to(sae.device, sae.W_enc.dtype)  # [real frames, d_in]
        zs.append(sae.encode(x).float().cpu())
        clips.append(torch.full((x.shape[0],), item.index, dtype=torch.int64))
        frames.append(torch.arange(x.shape[0]))
    return torch.cat(zs), torch.cat(clips), torch.cat(frames)


def basic(z: torch.Tensor, edges: torch.Tensor) -> dict[str, torch.Tensor]:
    """Frequency, mean, max and the log10 histogram (clamped into the end bins) of ``z`` ``[frames, d_sae]``."""
    z = z.double()
    bins = len(edges) - 1
    hist = torch.zeros(z.shape[1], bins, dtype=torch.int64)
    for j in range(z.shape[1]):
        v = z[:, j][z[:, j] > 0]
        for value in v.tolist():
            b = int(np.searchsorted(edges.numpy(), math.log10(value), side="right")) - 1
            hist[j, min(max(b, 0), bins - 1)] += 1
    return {"frequency": (z > 0).double().mean(0), "mean": z.mean(0), "max": z.max(0).values.clamp_min(0),
            "histogram": hist}


def top(z: torch.Tensor, clip: torch.Tensor, frame: torch.Tensor, n: int, latents=None) -> list[list[tuple]]:
    """Per latent: its ``n`` highest firing ``(value, clip, frame)``, ties by clip then frame."""
    out = []
    for j in (range(z.shape[1]) if latents is None else latents):
        col = z[:, j].numpy()
        on = np.nonzero(col > 0)[0]
        order = on[np.lexsort((frame.numpy()[on], clip.numpy()[on], -col[on]))][:n]
        out.append([(float(col[r]), int(clip[r]), int(frame[r])) for r in order])
    return out


def quantile_examples(z, clip, frame, edges, quantiles: int, per_group: int, seed: int) -> list[dict[int, tuple]]:
    """Per latent: ``{group: (lo, hi, keys)}`` for its non-empty quantile groups. A bin joins the group of the
    count quantile its first frame falls in; a group's examples are the ``per_group`` firing frames of its bins
    with the lowest ``(priority, key)``."""
    key = pack_key(clip, frame)
    bins = len(edges) - 1
    out = []
    for j in range(z.shape[1]):
        on = torch.nonzero(z[:, j] > 0).squeeze(1)
        groups = {}
        if len(on):
            b = (torch.bucketize(torch.log10(z[on, j].double()), edges, right=True) - 1).clamp(0, bins - 1)
            counts = torch.bincount(b, minlength=bins).tolist()
            p = priority(key[on], torch.full_like(on, j), seed)
            before = 0
            members: dict[int, list[int]] = {}
            for bb in range(bins):
                if counts[bb]:
                    members.setdefault(min(before * quantiles // len(on), quantiles - 1), []).append(bb)
                before += counts[bb]
            peak = float(z[:, j].max())
            for g, bb in members.items():
                sel = torch.isin(b, torch.tensor(bb))
                order = np.lexsort((key[on][sel].numpy(), p[sel].numpy()))[:per_group]
                lo = 0.0 if bb[0] == 0 else 10 ** float(edges[bb[0]])
                hi = min(math.inf if bb[-1] == bins - 1 else 10 ** float(edges[bb[-1] + 1]), peak)
                groups[g] = (lo, hi, {int(key[on][sel][i]) for i in order})
        out.append(groups)
    return out


def jaccard(z: torch.Tensor) -> torch.Tensor:
    """``[d_sae, d_sae]`` Jaccard index of firing frames (0 on the diagonal)."""
    on = (z > 0).double()
    both = on.T @ on
    n = on.sum(0)
    union = n[:, None] + n[None, :] - both
    out = torch.where(union > 0, both / union.clamp_min(1), torch.zeros_like(both))
    out.fill_diagonal_(0)
    return out


def selectivity(z: torch.Tensor, classes: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``[d_sae, classes]`` mean activation on the class / on the other labelled frames (``classes`` -1: unlabelled)."""
    z = z.double()
    out = torch.full((z.shape[1], n_classes), math.nan, dtype=torch.float64)
    for c in range(n_classes):
        inside, outside = z[classes == c], z[(classes >= 0) & (classes != c)]
        if len(inside) == 0 or len(outside) == 0:
            continue
        out[:, c] = inside.mean(0) / outside.mean(0)
    return out


def temporal_consistency(z: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """``[d_sae]`` η² = between-span / total variance over frames inside spans (``span`` -1: outside)."""
    z = z.double()[span >= 0]
    s = span[span >= 0]
    out = torch.full((z.shape[1],), math.nan, dtype=torch.float64)
    for j in range(z.shape[1]):
        a = z[:, j]
        total = ((a - a.mean()) ** 2).sum()
        if total <= 0:
            continue
        between = sum(len(a[s == i]) * (a[s == i].mean() - a.mean()) ** 2 for i in torch.unique(s))
        out[j] = between / total
    return out
