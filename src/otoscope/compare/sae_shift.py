"""How much worse an SAE fitted to model A reconstructs model B's activations: FVU increase per layer.

Per layer, a sparse autoencoder that explains A's activations is run on A's rows and on B's rows at the
same positions: ``fvu_increase = FVU(B) − FVU(A)``. Zero when B computes what A computes; large when B's
layer uses directions A's dictionary lacks. The SAEs come from ``--sae DIR`` (trained on model A with
``otoscope sae train``; then every clip is evaluated) or are trained here with otoscope's SAE trainer on A's
activations of the same clips (small TopK SAEs). With 16 clips or more the SAEs are trained on the
even-numbered clips and evaluated on the odd ones, so that FVU(A) is not flattered by rows the SAE was fitted
to; with fewer, both are measured on the training rows (said in the notes): an SAE fitted to a handful of
clips does not generalise to other clips (on tiny.en, FVU 0.02 on its 2 training clips, 0.5–0.8 on 2 others),
and that gap, the same for A and B, would drown the difference between them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from otoscope.compare.activations import PairedActivations, stack_of
from otoscope.compare.config import CompareConfig
from otoscope.compare.layers import LayerShift
from otoscope.sae.metrics import reconstruction_metrics
from otoscope.sae.model import SparseAutoencoder

HELD_OUT_MIN_CLIPS = 16  # from here on, train on even clips and evaluate on odd ones


def write_store(folder: Path, acts: PairedActivations, hooks: list[str], clips: list[int], positions: str) -> Path:
    """Model A's rows of ``hooks`` over ``clips`` as an activation store the SAE trainer reads."""
    from otoscope.sae.store import StoreInfo
    from otoscope.sae.writer import ShardWriter, index_rows

    corpus = {"description": "otoscope compare: model A", "n_clips": len(clips), "fingerprint": "compare"}
    writer = ShardWriter(folder, 0, 1, shard_rows=1 << 30)
    writer.open({})
    writer.write_info(StoreInfo(model="model-a", hooks=hooks, d_in={h: int(acts.a[h][0].shape[1]) for h in hooks},
                                dtype="float32", positions=positions, corpus=corpus, shard_rows=1 << 30))
    for n, i in enumerate(clips):
        tensors = {h: acts.a[h][i] for h in hooks}
        rows = next(iter(tensors.values())).shape[0]
        writer.add_clip({"id": n, "name": acts.clips[i], "text": None, "labels": {}, "seconds": 0.0}, tensors,
                        index_rows(n, torch.arange(rows), None))
        writer.advance(n + 1)
    writer.finish(len(clips))
    return folder


def train_saes(acts: PairedActivations, hooks: list[str], clips: list[int], config: CompareConfig) -> dict[str, SparseAutoencoder]:
    """One small TopK SAE per hook, trained with :class:`otoscope.sae.Trainer` on A's rows of ``clips``."""
    from otoscope.sae.train_config import TrainConfig
    from otoscope.sae.trainer import Trainer

    saes: dict[str, SparseAutoencoder] = {}
    for stack in dict.fromkeys(stack_of(h) for h in hooks):
        group = [h for h in hooks if stack_of(h) == stack]
        total_rows = sum(acts.a[group[0]][i].shape[0] for i in clips)
        d_in = min(int(acts.a[h][0].shape[1]) for h in group)
        batch = max(1, min(config.sae_batch_size, total_rows))
        train = TrainConfig(k=min(config.sae_k, d_in * config.sae_expansion), expansion=config.sae_expansion,
                            batch_size=batch, total_samples=batch * config.sae_steps, lr=config.sae_lr, checkpoint_every=None,
                            log_every=config.sae_steps, device=config.device or "cpu", seed=config.seed,
                            init_samples=total_rows, buffer_rows=max(total_rows, batch), autocast=False)
        with tempfile.TemporaryDirectory(prefix="otoscope-compare-") as tmp:
            store = write_store(Path(tmp) / "store", acts, group, clips, "frames" if stack == "encoder" else "tokens")
            trainer = Trainer(store, Path(tmp) / "saes", train)
            trainer.fit(resume=False, progress=False)
            saes.update({h: trainer.sae(h).eval() for h in group})
    return saes


def load_saes_for(sae_dir: str, hooks: list[str], device) -> dict[str, SparseAutoencoder]:
    """The SAEs under ``sae_dir`` whose hook is one of ``hooks``."""
    from otoscope.sae.format import load_saes

    return {h: sae for h, sae in load_saes(sae_dir, device).items() if h in hooks}


def sae_shift(acts: PairedActivations, shifts: list[LayerShift], config: CompareConfig) -> list[str]:
    """Fill ``fvu_a``, ``fvu_b``, ``fvu_increase`` of ``shifts`` in place; return notes (what was skipped, and why)."""
    notes: list[str] = []
    hooks = [s.hook for s in shifts if s.drift is not None]  # same width in both models
    n = len(acts.clips)
    if config.sae_dir:
        saes = load_saes_for(config.sae_dir, hooks, config.device)
        evaluate = list(range(n))
        missing = [h for h in hooks if h not in saes]
        if missing:
            notes.append(f"no SAE in {config.sae_dir} for {len(missing)} layer(s) ({', '.join(missing[:4])}"
                         f"{', …' if len(missing) > 4 else ''}): no FVU there")
    else:
        train = list(range(0, n, 2)) if n >= HELD_OUT_MIN_CLIPS else list(range(n))
        evaluate = list(range(1, n, 2)) if n >= HELD_OUT_MIN_CLIPS else train
        if n < HELD_OUT_MIN_CLIPS:
            notes.append(f"SAE FVU measured on the clips the SAEs were trained on (fewer than {HELD_OUT_MIN_CLIPS} clips "
                         "for a held-out split): FVU(A) is optimistic")
        saes = train_saes(acts, hooks, train, config)
    for shift in shifts:
        sae = saes.get(shift.hook)
        if sae is None:
            continue
        if sae.d_in != acts.a[shift.hook][0].shape[1]:
            notes.append(f"{shift.hook}: the SAE reads width {sae.d_in}, the layer has {acts.a[shift.hook][0].shape[1]}")
            continue
        a, b = acts.rows(shift.hook, evaluate)
        shift.fvu_a = reconstruction_metrics(sae, a).fvu
        shift.fvu_b = reconstruction_metrics(sae, b).fvu
        shift.fvu_increase = shift.fvu_b - shift.fvu_a
    return notes
