"""Training SAEs on an activation store: one SAE per hook point, all fed from the same batches.

Each step: scale the batch (when ``normalize_activations``), encode, decode, and minimise
``‖x − x̂‖² / (batch · σ²)`` (σ² is the data's mean squared distance from its mean, estimated once, so the
loss is the FVU against a fixed denominator and the same on every rank) plus the architecture's sparsity
penalty and, for the TopK family, ``auxk_coefficient ×`` the AuxK loss on dead latents. Then: average
gradients over ranks, drop the decoder gradient along its rows, clip, AdamW with warm-up and cosine
decay, re-normalise decoder rows, update firing statistics, maybe resample dead latents.

Non-finite activations or losses stop training with an error that names the hook, step and (for bad
activations) the shard and clip; no checkpoint is written after that point, so the last good one stays.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from otoscope._io import write_text_atomic
from otoscope.errors import OtoscopeError
from otoscope.sae.checkpoint import HookState, checkpoints, load_checkpoint, save_checkpoint
from otoscope.sae.dead import FiringTracker, resample_dead, reset_moments
from otoscope.sae.distributed import DistInfo, all_sum, average_gradients, barrier, broadcast, default_device, setup
from otoscope.sae.format import save_sae
from otoscope.sae.model import SparseAutoencoder
from otoscope.sae.reader import ShuffledReader
from otoscope.sae.store import ActivationStore
from otoscope.sae.train_config import TrainConfig


@dataclass
class HookMetrics:
    """Training figures of one SAE, averaged over the last logging window."""

    loss: float
    """Total loss."""
    fvu: float
    """Fraction of variance unexplained, ``‖x − x̂‖² / ‖x − mean(x)‖²`` per batch."""
    mse: float
    """Mean squared error per element, in the activations' own units."""
    l0: float
    """Active latents per row."""
    aux_loss: float
    """AuxK loss (0 when no latent is dead)."""
    dead_fraction: float
    """Fraction of latents dead (no firing in ``dead_after`` rows)."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` produced."""

    out: Path
    """The output folder."""
    saes: dict[str, Path]
    """Final SAELens folder per hook (empty when stopped early)."""
    steps: int
    """Optimiser steps done (including resumed ones)."""
    samples: int
    """Rows trained on."""
    metrics: dict[str, HookMetrics]
    """Per hook, the last window's figures."""
    samples_per_s: float
    """Throughput of this run (all ranks, all hooks at once)."""
    resumed_from: int | None = None
    """Step of the checkpoint this run resumed from, or None."""
    history: list[dict] = field(default_factory=list)
    """The lines this run appended to ``metrics.jsonl``."""


class Trainer:
    """Train one SAE per hook of ``store`` into ``out``."""

    def __init__(self, store: ActivationStore | str | Path, out: str | Path, config: TrainConfig,
                 hooks: list[str] | None = None):
        self.store = store if isinstance(store, ActivationStore) else ActivationStore(store)
        self.out = Path(out)
        self.config = config
        self.hooks = self.store.check_hooks(hooks or self.store.hooks)
        self.info: DistInfo = setup()
        self.device = default_device(self.info, config.device)
        if config.batch_size % self.info.world_size:
            raise OtoscopeError(f"batch_size {config.batch_size} does not split over {self.info.world_size} ranks.")
        self.states = [self._new_state(i, hook) for i, hook in enumerate(self.hooks)]
        self.step = 0
        self.position = 0

    # ------------------------------------------------------------------ set-up
    def _new_state(self, i: int, hook: str) -> HookState:
        cfg = self.config
        shape = self.store.info.hook_shapes.get(hook)
        sae_cfg = cfg.sae_config(self.store.d_in(hook), hook, self.store.info.model, shape)
        sae_cfg.extra = {"store": str(self.store.path), "store_fingerprint": self.store.info.corpus.get("fingerprint"),
                         **cfg.extra}
        sae = SparseAutoencoder(sae_cfg, seed=cfg.seed + i, device=self.device)
        kwargs = dict(lr=cfg.peak_lr(sae_cfg.d_sae), betas=cfg.betas, eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
        try:
            optimizer = torch.optim.AdamW(sae.parameters(), fused=True, **kwargs)
        except (RuntimeError, ValueError):  # fused kernels are not built for every device
            optimizer = torch.optim.AdamW(sae.parameters(), **kwargs)
        return HookState(hook, sae, optimizer, FiringTracker(sae_cfg.d_sae, cfg.dead_after, self.device))

    @torch.no_grad()
    def _init_statistics(self) -> None:
        """Data mean (→ decoder bias), input scale and loss normaliser, from the first ``init_samples`` rows."""
        rows = min(self.config.init_samples, self.store.n_rows)
        reader = ShuffledReader(self.store, self.hooks, rows, seed=self.config.seed, buffer_rows=self.config.buffer_rows,
                                device=self.device, prefetch=False)
        batch = next(iter(reader))
        for st in self.states:
            x = batch.acts[st.hook].double()
            self._check_finite(st.hook, x, reader, batch.position, rank_offset=0)
            mean = x.mean(0)
            scale = math.sqrt(x.shape[1]) / float(x.norm(dim=1).mean().clamp_min(1e-12)) \
                if self.config.normalize_activations else 1.0
            st.scale = scale
            st.norm = scale * math.sqrt(float((x - mean).pow(2).sum(1).mean().clamp_min(1e-24)))
            st.sae.init_b_dec(mean * scale)

    def _meta(self) -> dict:
        return {"config": self.config.to_dict(), "store": str(self.store.path),
                "store_fingerprint": self.store.info.corpus.get("fingerprint"), "store_hooks": self.hooks,
                "d_in": {h: self.store.d_in(h) for h in self.hooks}}

    def _resume(self) -> int | None:
        found = checkpoints(self.out / "checkpoints")
        if not found:
            return None
        latest = found[-1]
        record = json.loads((latest / "state.json").read_text(encoding="utf-8"))
        saved = TrainConfig.from_dict(record["config"])
        wrong = [f for f in TrainConfig.IDENTITY if getattr(saved, f) != getattr(self.config, f)]
        if wrong or record.get("store_hooks") != self.hooks:
            what = ", ".join(wrong) or "hooks"
            raise OtoscopeError(f"{self.out} holds a training run with different settings ({what}); resume with the "
                                "same settings, or train into a new folder.")
        widths = {h: self.store.d_in(h) for h in self.hooks}
        if record.get("d_in", widths) != widths:
            raise OtoscopeError(f"the checkpoint in {self.out} was trained on activations of width {record['d_in']} but "
                                f"the store has {widths}; resume with the store it was trained on.")
        record = load_checkpoint(latest, self.states)
        self.step, self.position = int(record["step"]), int(record["position"])
        return self.step

    # ------------------------------------------------------------------ checks
    def _check_finite(self, hook: str, x: torch.Tensor, reader: ShuffledReader, position: int, rank_offset: int) -> None:
        bad = ~torch.isfinite(x).all(dim=1)
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            src = reader.locate(position + rank_offset + row)
            raise OtoscopeError(f"NaN/inf activations for {hook} at step {self.step}: {int(bad.sum())} rows, the first "
                                f"from {src.shard} (clip {src.clip_name}, frame {src.frame}). Training stopped; the "
                                f"last checkpoint is untouched. {self._last_checkpoint()}Re-extract that clip or drop it.")

    def _last_checkpoint(self) -> str:
        found = checkpoints(self.out / "checkpoints")
        return f"Resume point: {found[-1]}. " if found else ""

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        if self.device.type == "cuda" and self.config.autocast:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _train_step(self, st: HookState, raw: torch.Tensor, reader: ShuffledReader, position: int, sums: dict) -> None:
        cfg, sae = self.config, st.sae
        local = raw.shape[0]
        x = raw * st.scale if st.scale != 1.0 else raw
        self._check_finite(st.hook, x, reader, position, self.info.rank * local)
        dead = st.tracker.dead() if sae.cfg.sparse and cfg.auxk_coefficient > 0 else None
        n_dead = int(dead.sum()) if dead is not None else 0
        k_aux_full = cfg.k_aux or sae.d_in // 2
        k_aux = min(k_aux_full, n_dead)
        with self._autocast():
            out = sae.train_forward(x, norm=st.norm, dead=dead if k_aux else None, k_aux=k_aux)
        err = x - out.x_hat.float()
        denom = local * st.norm ** 2
        loss = err.pow(2).sum() / denom + out.sparsity_loss.float()
        aux = None
        if out.aux_recon is not None:
            aux = min(n_dead / k_aux_full, 1.0) * (out.aux_recon.float() - err.detach()).pow(2).sum() / denom
            loss = loss + cfg.auxk_coefficient * aux
        if not bool(torch.isfinite(loss)):
            raise OtoscopeError(f"the loss of {st.hook} became NaN/inf at step {self.step} (lr "
                                f"{cfg.lr_at(self.step, sae.d_sae):.2e}). Training stopped without writing a checkpoint. "
                                f"{self._last_checkpoint()}Lower the learning rate or check the activations.")
        st.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(sae.parameters(), self.info)
        sae.remove_parallel_grad_()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(sae.parameters(), cfg.grad_clip)
        for group in st.optimizer.param_groups:
            group["lr"] = cfg.lr_at(self.step, sae.d_sae)
        st.optimizer.step()
        sae.normalize_decoder_()
        sae.clamp_threshold_()
        if sae.cfg.architecture == "batchtopk":
            broadcast([sae.threshold], self.info)  # each rank's EMA saw its own slice: keep rank 0's
        st.tracker.update(all_sum(out.counts.to(torch.int64), self.info), cfg.batch_size)
        if cfg.resample_every and (self.step + 1) % cfg.resample_every == 0:
            self._resample(st, x)
        with torch.no_grad():
            centred = (x - x.mean(0)).pow(2).sum()
            s = sums.setdefault(st.hook, torch.zeros(5, dtype=torch.float64, device=x.device))
            s += torch.stack([loss.detach().double(), (err.pow(2).sum() / centred.clamp_min(1e-30)).double(),
                              err.pow(2).mean().double() / st.scale ** 2, out.l0.detach().double(),
                              (aux.detach().double() if aux is not None else torch.zeros((), dtype=torch.float64, device=x.device))])

    def _resample(self, st: HookState, x: torch.Tensor) -> None:
        dead = st.tracker.dead()
        if not bool(dead.any()):
            return
        latents = dead.nonzero().flatten()
        if self.info.main:
            generator = torch.Generator().manual_seed(self.config.seed * 7919 + self.step)
            resample_dead(st.sae, x, dead, st.optimizer, generator)
        else:
            reset_moments(st.sae, st.optimizer, latents)
        broadcast([st.sae.W_enc, st.sae.W_dec, st.sae.b_enc], self.info)
        st.tracker.revive(latents)

    # ------------------------------------------------------------------ the loop
    def fit(self, *, resume: bool = True, stop_after: int | None = None, progress: bool = True) -> TrainResult:
        """Train to ``config.total_samples`` (resuming from the newest checkpoint when ``resume``).

        ``stop_after`` ends the run after that many steps without writing the final SAEs (as a kill would,
        right after the last checkpoint).
        """
        from tqdm.auto import tqdm

        cfg, info = self.config, self.info
        finished = self._finished() if resume else None
        if finished is not None:
            return finished
        resumed = self._resume() if resume else None
        if resumed is None:
            self._init_statistics()
        if info.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.out / "train_config.json", json.dumps(self._meta(), indent=1))
        log_path = self.out / "metrics.jsonl"
        if info.main:
            _truncate_log(log_path, self.step)
        wandb_run = self._wandb() if info.main and cfg.wandb_project else None
        reader = ShuffledReader(self.store, self.hooks, cfg.batch_size, seed=cfg.seed, buffer_rows=cfg.buffer_rows,
                                start=self.position, rank=info.rank, world_size=info.world_size, device=self.device)
        batches = iter(reader)
        bar = tqdm(total=cfg.total_steps, initial=self.step, desc="train SAE", unit="step",
                   disable=not (progress and info.main))
        sums: dict[str, torch.Tensor] = {}
        window, history, started, start_step = 0, [], time.perf_counter(), self.step
        last: dict[str, HookMetrics] = {}
        while self.step < cfg.total_steps:
            batch = next(batches)
            for st in self.states:
                self._train_step(st, batch.acts[st.hook], reader, batch.position, sums)
            self.step += 1
            self.position = batch.position + cfg.batch_size
            window += 1
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.total_steps:
                last = self._window_metrics(sums, window)
                line = {"step": self.step, "samples": self.position, "lr": cfg.lr_at(self.step - 1, self.states[0].sae.d_sae),
                        "samples_per_s": (self.step - start_step) * cfg.batch_size / (time.perf_counter() - started),
                        "hooks": {h: m.__dict__ for h, m in last.items()}}
                history.append(line)
                if info.main:
                    with log_path.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps(line) + "\n")
                    if wandb_run is not None:
                        wandb_run.log(_flatten(line), step=self.step)
                sums, window = {}, 0
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < cfg.total_steps:
                if info.main:
                    save_checkpoint(self.out / "checkpoints", self.step, self.position, self.states, self._meta(),
                                    cfg.keep_checkpoints)
                barrier(info)
            if stop_after is not None and self.step >= stop_after:
                break
        bar.close()
        elapsed = time.perf_counter() - started
        rate = (self.step - start_step) * cfg.batch_size / elapsed if elapsed > 0 else float("nan")
        saes = {}
        if self.step >= cfg.total_steps:
            saes = self._save_final(last, rate)
        if wandb_run is not None:
            wandb_run.finish()
        return TrainResult(self.out, saes, self.step, self.position, last, rate, resumed, history)

    def _finished(self) -> TrainResult | None:
        """The result of an identical run that already finished in ``out`` (a rerun is then a no-op)."""
        try:
            summary = json.loads((self.out / "metrics.json").read_text(encoding="utf-8"))
            meta = json.loads((self.out / "train_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        saved = TrainConfig.from_dict(meta["config"])
        if summary.get("steps") != self.config.total_steps or meta.get("store_hooks") != self.hooks or \
                any(getattr(saved, f) != getattr(self.config, f) for f in TrainConfig.IDENTITY):
            return None
        metrics = {h: HookMetrics(**m) for h, m in summary["hooks"].items()}
        return TrainResult(self.out, {h: Path(p) for h, p in summary["saes"].items()}, summary["steps"],
                           summary["samples"], metrics, summary["samples_per_s"], self.config.total_steps)

    def _window_metrics(self, sums: dict[str, torch.Tensor], window: int) -> dict[str, HookMetrics]:
        out = {}
        for st in self.states:
            s = all_sum(sums[st.hook].clone(), self.info) / (window * self.info.world_size)
            loss, fvu, mse, l0, aux = s.tolist()
            out[st.hook] = HookMetrics(loss, fvu, mse, l0, aux, float(st.tracker.dead().float().mean()))
        return out

    def _save_final(self, last: dict[str, HookMetrics], rate: float) -> dict[str, Path]:
        saes = {}
        if self.info.main:
            for st in self.states:
                st.sae.cfg.extra = {**st.sae.cfg.extra, "trained_samples": self.position, "steps": self.step,
                                    **({"final": last[st.hook].__dict__} if st.hook in last else {})}
                saes[st.hook] = save_sae(st.sae, self.out / st.hook, frequency=st.tracker.frequency(), scale=st.scale)
            summary = {"steps": self.step, "samples": self.position, "samples_per_s": rate,
                       "hooks": {h: m.__dict__ for h, m in last.items()}, "saes": {h: str(p) for h, p in saes.items()}}
            write_text_atomic(self.out / "metrics.json", json.dumps(summary, indent=1))
        barrier(self.info)
        return saes or {st.hook: self.out / st.hook for st in self.states}

    def _wandb(self):
        try:
            import wandb
        except ImportError:
            raise OtoscopeError("wandb_project is set but wandb is not installed: pip install wandb, or drop it.") from None
        return wandb.init(project=self.config.wandb_project, name=self.config.wandb_run_name, config=self._meta())

    def sae(self, hook: str) -> SparseAutoencoder:
        """The SAE for ``hook`` with the training scale folded in (ready for raw activations)."""
        for st in self.states:
            if st.hook == hook:
                return st.sae.folded(st.scale)
        raise OtoscopeError(f"no SAE is being trained for {hook}; hooks: {', '.join(self.hooks)}.")


def _truncate_log(path: Path, step: int) -> None:
    """Drop ``metrics.jsonl`` lines after ``step`` (a resumed run rewrites them)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    write_text_atomic(path, "".join(line + "\n" for line in keep))


def _flatten(line: dict) -> dict:
    flat = {k: v for k, v in line.items() if k != "hooks"}
    for hook, values in line["hooks"].items():
        flat.update({f"{hook}/{k}": v for k, v in values.items()})
    return flat


def train_saes(store, out, config: TrainConfig, hooks: list[str] | None = None, **fit_kwargs) -> TrainResult:
    """Train one SAE per hook of ``store`` into ``out`` (see :class:`Trainer`)."""
    return Trainer(store, out, config, hooks).fit(**fit_kwargs)
