"""Synthetic activations with a known sparse structure, and stores built from tensors (no model needed)."""

from __future__ import annotations

from pathlib import Path

import torch

from otoscope.sae.store import StoreInfo
from otoscope.sae.writer import ShardWriter, index_rows


def sparse_data(rows: int = 4096, d_in: int = 16, n_features: int = 48, active: int = 3, seed: int = 0,
                offset: float = 4.0, noise: float = 0.01) -> torch.Tensor:
    """Rows that are sums of ``active`` of ``n_features`` unit directions (positive weights), plus a shared offset."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.nn.functional.normalize(torch.randn(n_features, d_in, generator=g), dim=1)
    which = torch.stack([torch.randperm(n_features, generator=g)[:active] for _ in range(rows)])
    weights = torch.rand(rows, active, generator=g) + 0.5
    x = (weights[..., None] * directions[which]).sum(1)
    return x + offset * torch.ones(d_in) / d_in ** 0.5 + noise * torch.randn(rows, d_in, generator=g)


def make_store(path: Path, data: dict[str, torch.Tensor], *, clip_rows: int = 16, shard_rows: int = 256,
               dtype: str = "float32") -> Path:
    """Write ``data`` ``{hook: [rows, d_in]}`` as an activation store of clips of ``clip_rows`` frames."""
    rows = next(iter(data.values())).shape[0]
    n_clips = rows // clip_rows
    corpus = {"description": "synthetic", "n_clips": n_clips, "fingerprint": "synthetic"}
    writer = ShardWriter(path, 0, 1, shard_rows)
    writer.open({})
    writer.write_info(StoreInfo(model="synthetic", hooks=list(data), d_in={h: int(t.shape[1]) for h, t in data.items()},
                                dtype=dtype, positions="frames", corpus=corpus, shard_rows=shard_rows))
    storage = getattr(torch, dtype)
    for clip in range(n_clips):
        part = slice(clip * clip_rows, (clip + 1) * clip_rows)
        writer.add_clip({"id": clip, "name": f"clip{clip}", "text": None, "labels": {}, "seconds": clip_rows * 0.02},
                        {h: t[part].to(storage) for h, t in data.items()}, index_rows(clip, torch.arange(clip_rows), 0.02))
        writer.advance(clip + 1)
    writer.finish(n_clips)
    return path
