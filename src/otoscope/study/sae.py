"""An SAE on one hook of a study, trained by otoscope's own trainer on the study's positions.

The study's rows (every real frame or token of every item at the hook) go into a temporary activation
store, :class:`otoscope.sae.trainer.Trainer` trains one SAE on it (ReLU + L1 as in the pilot, or TopK), and
:func:`otoscope.study.run.run_study` saves it in the output in SAELens format (so ``otoscope sae features``
and the dashboards read it).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from otoscope.geometry.collect import LayerActivations
from otoscope.sae.model import SparseAutoencoder
from otoscope.sae.store import StoreInfo
from otoscope.sae.train_config import TrainConfig
from otoscope.sae.trainer import HookMetrics, Trainer
from otoscope.sae.writer import ShardWriter, index_rows


@dataclass
class StudySAE:
    """The trained SAE and how well it fits."""

    sae: SparseAutoencoder
    """Ready for raw activations (training scale folded in)."""
    hook: str
    """The hook it reads."""
    metrics: HookMetrics | None
    """Last logging window's FVU, L0, dead fraction."""


def write_rows_store(folder: Path, hook: str, items: Sequence[LayerActivations], layer: int, model_name: str) -> Path:
    """An activation store in ``folder`` holding ``items``' rows at ``hook`` (``acts[layer]``), one clip per item."""
    width = int(items[0].acts.shape[-1])
    corpus = {"description": "study", "n_clips": len(items), "fingerprint": f"study-{len(items)}"}
    writer = ShardWriter(folder, 0, 1, shard_rows=1 << 20)
    writer.open({})
    writer.write_info(StoreInfo(model=model_name, hooks=[hook], d_in={hook: width}, dtype="float32", positions="frames",
                                corpus=corpus, shard_rows=1 << 20, source="study"))
    for i, item in enumerate(items):
        rows = item.acts[layer].float()  # [positions, d_model]
        writer.add_clip({"id": i, "name": item.name, "text": None, "labels": {"label": item.label}, "seconds": 0.0},
                        {hook: rows}, index_rows(i, torch.arange(rows.shape[0]), None))
        writer.advance(i + 1)
    writer.finish(len(items))
    return folder


def train_study_sae(items: Sequence[LayerActivations], hook: str, config: TrainConfig,
                    model_name: str = "study") -> StudySAE:
    """Train an SAE on ``items``' positions at ``hook`` with ``config`` (store and checkpoints in a temporary folder)."""
    layer = items[0].layers.index(hook)
    with tempfile.TemporaryDirectory(prefix="otoscope-study-") as tmp:
        store = write_rows_store(Path(tmp) / "store", hook, items, layer, model_name)
        trainer = Trainer(store, Path(tmp) / "sae", config, [hook])
        result = trainer.fit(resume=False, progress=False)
        sae = trainer.sae(hook)
    return StudySAE(sae, hook, result.metrics.get(hook))


def study_train_config(n_rows: int, *, architecture: str = "relu", expansion: int = 8, k: int = 32,
                       l1_coefficient: float = 0.3, steps: int = 600, batch_size: int = 256, lr: float | None = 1e-3,
                       seed: int = 0, device: str | None = None) -> TrainConfig:
    """A :class:`TrainConfig` sized for a study's few thousand rows: ``steps`` full batches, no checkpoints."""
    batch = min(batch_size, n_rows)
    return TrainConfig(architecture=architecture, expansion=expansion, k=k, l1_coefficient=l1_coefficient,
                       batch_size=batch, total_samples=steps * batch, lr=lr, seed=seed, device=device,
                       checkpoint_every=None, init_samples=n_rows, log_every=max(1, steps // 10),
                       buffer_rows=max(n_rows, batch))


@torch.no_grad()
def latent_means(sae: SparseAutoencoder, items: Sequence[LayerActivations], layer: int) -> torch.Tensor:
    """``[items, d_sae]``: each latent's mean activation over an item's positions at ``acts[layer]``."""
    device = sae.device
    return torch.stack([sae.encode(item.acts[layer].to(device)).float().mean(0).cpu() for item in items])
