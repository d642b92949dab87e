"""Running "best k per group" selections over sparse entries, merged batch by batch in fixed memory.

Two selections use it: the top-N activating frames of every latent (group = latent, best = highest value)
and the quantile examples (group = latent × histogram bin, best = lowest hash priority: a bottom-k sample,
which is a uniform sample without replacement that merges exactly). Ties are broken by the entry's key
(``clip << 32 | frame``, smaller first), so the result is one total order: the same for any batching,
any number of ranks and any order of merging. Entries carry the key and one float payload.

A batch merge gathers the current best of the groups the batch touches, appends the batch's entries and
re-selects with three stable sorts (key, then score, then group): ``O(nnz log nnz)`` per batch with no loop
over latents, and the ``[groups, k]`` state never grows.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

EMPTY_KEY = -1  # key of an empty slot


def pack_key(clip: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """``[n]`` int64 keys ``clip << 32 | frame`` (one total order: clip, then frame)."""
    return (clip.to(torch.int64) << 32) | frame.to(torch.int64)


def unpack_key(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(clip, frame)`` of packed keys."""
    return key >> 32, key & 0xFFFFFFFF


def priority(key: torch.Tensor, group: torch.Tensor, seed: int) -> torch.Tensor:
    """A pseudo-random int64 in ``[0, 2³¹)`` per entry, a function of ``(key, group, seed)`` only (so every
    rank and every batching draws the same sample). Products stay below 2⁶³: no overflow."""
    mod = (1 << 31) - 1
    h = (key % mod) ^ ((group.to(torch.int64) * 40503 + seed * 69069 + 12345) % mod)
    for mult in (1103515245, 2654435761 % mod, 1664525):
        h = (h * mult + 1013904223) % mod
        h = h ^ (h >> 13)
    return h


class Best(NamedTuple):
    """The best ``k`` entries of ``groups`` groups: score-ordered rows, empty slots have key ``EMPTY_KEY``."""

    score: torch.Tensor
    """``[groups, k]`` the ordering score (value for top-N, priority for samples)."""
    key: torch.Tensor
    """``[groups, k]`` int64 packed ``(clip, frame)``."""
    payload: torch.Tensor
    """``[groups, k]`` float32 activation."""


def empty(groups: int, k: int, descending: bool, device=None) -> Best:
    """A selection with every slot empty."""
    fill = float("-inf") if descending else float("inf")
    return Best(torch.full((groups, k), fill, dtype=torch.float64, device=device),
                torch.full((groups, k), EMPTY_KEY, dtype=torch.int64, device=device),
                torch.zeros(groups, k, dtype=torch.float32, device=device))


def _order(group: torch.Tensor, score: torch.Tensor, key: torch.Tensor, descending: bool) -> torch.Tensor:
    """Permutation sorting entries by group, then score (desc or asc), then key (ascending)."""
    idx = torch.argsort(key, stable=True)
    idx = idx[torch.argsort(score[idx], descending=descending, stable=True)]
    return idx[torch.argsort(group[idx], stable=True)]


def merge(best: Best, group: torch.Tensor, score: torch.Tensor, key: torch.Tensor, payload: torch.Tensor,
          descending: bool) -> None:
    """Merge entries ``(group, score, key, payload)`` (``[nnz]`` each) into ``best`` in place."""
    if group.numel() == 0:
        return
    k = best.key.shape[1]
    touched = torch.unique(group)  # [t], sorted
    cur_key = best.key[touched]  # [t, k]
    valid = cur_key != EMPTY_KEY
    rows = torch.arange(len(touched), device=group.device)[:, None].expand(-1, k)
    # Batch entries' group → position in `touched`
    position = torch.searchsorted(touched, group)
    g = torch.cat([rows[valid], position])
    s = torch.cat([best.score[touched][valid], score.to(torch.float64)])
    kk = torch.cat([cur_key[valid], key])
    p = torch.cat([best.payload[touched][valid], payload.to(torch.float32)])
    idx = _order(g, s, kk, descending)
    g = g[idx]
    counts = torch.bincount(g, minlength=len(touched))
    starts = counts.cumsum(0) - counts
    rank = torch.arange(len(g), device=g.device) - starts[g]
    keep = rank < k
    fill = float("-inf") if descending else float("inf")
    new = Best(torch.full((len(touched), k), fill, dtype=torch.float64, device=g.device),
               torch.full((len(touched), k), EMPTY_KEY, dtype=torch.int64, device=g.device),
               torch.zeros(len(touched), k, dtype=torch.float32, device=g.device))
    gk, rk = g[keep], rank[keep]
    new.score[gk, rk] = s[idx][keep]
    new.key[gk, rk] = kk[idx][keep]
    new.payload[gk, rk] = p[idx][keep]
    best.score[touched] = new.score
    best.key[touched] = new.key
    best.payload[touched] = new.payload


def merge_all(best: Best, other: Best, descending: bool) -> None:
    """Merge another selection of the same shape (e.g. another rank's) into ``best`` in place."""
    valid = other.key != EMPTY_KEY
    group = torch.arange(other.key.shape[0], device=other.key.device)[:, None].expand_as(other.key)[valid]
    merge(best, group, other.score[valid], other.key[valid], other.payload[valid], descending)
