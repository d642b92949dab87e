"""Training settings and the learning-rate schedule (linear warm-up, then cosine decay)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from otoscope.errors import OtoscopeError
from otoscope.sae.config import ARCHITECTURES, SAEConfig


@dataclass
class TrainConfig:
    """How to train one SAE per hook point from an activation store."""

    architecture: str = "topk"
    """``topk``, ``batchtopk``, ``relu`` or ``jumprelu``."""
    k: int = 32
    """Active latents per input (TopK; average for BatchTopK)."""
    expansion: int = 16
    """``d_sae = expansion × d_in`` unless ``d_sae`` is given."""
    d_sae: int | None = None
    """Number of latents (overrides ``expansion``)."""
    l1_coefficient: float = 5.0
    """ReLU: L1 penalty weight (see :class:`otoscope.sae.config.SAEConfig`)."""
    l0_coefficient: float = 1e-3
    """JumpReLU: L0 penalty weight."""
    jumprelu_bandwidth: float = 1e-3
    """JumpReLU: straight-through estimator bandwidth."""
    jumprelu_init_threshold: float = 1e-3
    """JumpReLU: initial thresholds."""
    batch_size: int = 4096
    """Rows per optimiser step, over all ranks."""
    total_samples: int = 10_000_000
    """Rows to train on (the store is repeated in new orders when it is smaller)."""
    lr: float | None = None
    """Peak learning rate. Default: ``2e-4 / sqrt(d_sae / 16384)`` (sparsify's scaling rule)."""
    lr_end: float = 0.1
    """Final learning rate as a fraction of the peak (cosine decay after warm-up)."""
    warmup_steps: int | None = None
    """Linear warm-up steps. Default: 5% of the steps, at most 1000."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    adam_eps: float = 1e-8
    """AdamW epsilon."""
    grad_clip: float | None = 1.0
    """Clip the gradient norm of each SAE to this (None: no clipping)."""
    auxk_coefficient: float = 1 / 32
    """TopK family: weight of the AuxK loss that lets dead latents model the residual (0 turns it off)."""
    k_aux: int | None = None
    """AuxK: dead latents used per row. Default: ``d_in // 2``."""
    dead_after: int = 10_000_000
    """A latent is dead after this many rows without firing (sets AuxK's mask, resampling and the dead count)."""
    resample_every: int | None = None
    """Resample dead latents toward badly reconstructed inputs every this many steps (None: never)."""
    normalize_activations: bool = True
    """Scale inputs so their mean norm is ``sqrt(d_in)`` while training; the scale is folded into the saved weights."""
    init_samples: int = 65536
    """Rows used to estimate the data mean (the decoder bias's start) and scale."""
    seed: int = 0
    """Seed of the weights, the shuffling and the resampling."""
    buffer_rows: int = 1 << 18
    """Rows in the shuffling buffer (several shards are mixed at once)."""
    device: str | None = None
    """``cpu``, ``cuda``, ``cuda:1`` … Default: the rank's GPU when there is one, else CPU."""
    autocast: bool = True
    """On GPU, run the encoder matmul in bfloat16 autocast (weights and sparse parts stay float32)."""
    checkpoint_every: int | None = 1000
    """Write a resumable checkpoint every this many steps (None: only the final SAEs)."""
    keep_checkpoints: int = 2
    """Checkpoints kept (older ones are deleted)."""
    log_every: int = 100
    """Append a line to ``metrics.jsonl`` every this many steps."""
    wandb_project: str | None = None
    """Weights & Biases project to log to (None: no W&B; it is never needed)."""
    wandb_run_name: str | None = None
    """W&B run name."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes saved with the SAEs."""

    IDENTITY = ("architecture", "k", "expansion", "d_sae", "batch_size", "total_samples", "lr", "lr_end",
                "warmup_steps", "betas", "weight_decay", "seed", "buffer_rows", "normalize_activations",
                "auxk_coefficient", "resample_every", "dead_after")

    def __post_init__(self):
        self.betas = tuple(self.betas)
        if self.architecture not in ARCHITECTURES:
            raise OtoscopeError(f"unknown architecture '{self.architecture}'; use one of {', '.join(ARCHITECTURES)}.")
        if self.batch_size < 1:
            raise OtoscopeError(f"batch_size must be at least 1, got {self.batch_size}.")
        if self.total_samples < self.batch_size:
            raise OtoscopeError(f"total_samples ({self.total_samples}) is less than one batch ({self.batch_size}); "
                                "train on more samples or use a smaller batch.")
        if self.lr is not None and self.lr <= 0:
            raise OtoscopeError(f"lr must be positive, got {self.lr}.")
        if not 0 <= self.lr_end <= 1:
            raise OtoscopeError(f"lr_end is a fraction of the peak learning rate, in [0, 1]; got {self.lr_end}.")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps < self.total_steps:
            raise OtoscopeError(f"warmup_steps ({self.warmup_steps}) must be less than the {self.total_steps} steps.")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise OtoscopeError("grad_clip must be positive (or None to turn clipping off).")
        if self.dead_after < 1 or self.init_samples < 1 or self.log_every < 1 or self.keep_checkpoints < 1:
            raise OtoscopeError("dead_after, init_samples, log_every and keep_checkpoints must be at least 1.")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise OtoscopeError("checkpoint_every must be at least 1 (or None for no checkpoints).")
        if self.resample_every is not None and self.resample_every < 1:
            raise OtoscopeError("resample_every must be at least 1 (or None for no resampling).")
        if self.auxk_coefficient < 0:
            raise OtoscopeError("auxk_coefficient must be >= 0.")

    @property
    def total_steps(self) -> int:
        """Optimiser steps: ``total_samples // batch_size``."""
        return self.total_samples // self.batch_size

    @property
    def warmup(self) -> int:
        """Warm-up steps actually used."""
        return self.warmup_steps if self.warmup_steps is not None else min(1000, self.total_steps // 20)

    def sae_config(self, d_in: int, hook_name: str, model_name: str | None, hook_shape=None) -> SAEConfig:
        """The :class:`SAEConfig` of the SAE for one hook."""
        return SAEConfig(d_in=d_in, d_sae=self.d_sae, architecture=self.architecture, expansion=self.expansion, k=self.k,
                         l1_coefficient=self.l1_coefficient, l0_coefficient=self.l0_coefficient,
                         jumprelu_bandwidth=self.jumprelu_bandwidth, jumprelu_init_threshold=self.jumprelu_init_threshold,
                         model_name=model_name, hook_name=hook_name, hook_shape=hook_shape)

    def peak_lr(self, d_sae: int) -> float:
        """The peak learning rate for an SAE with ``d_sae`` latents."""
        return self.lr if self.lr is not None else 2e-4 / math.sqrt(d_sae / 2**14)

    def lr_at(self, step: int, d_sae: int) -> float:
        """Learning rate of step ``step`` (0-based): linear warm-up, then cosine decay to ``lr_end × peak``."""
        peak = self.peak_lr(d_sae)
        warmup = self.warmup
        if step < warmup:
            return peak * (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, self.total_steps - warmup))
        return peak * (self.lr_end + (1 - self.lr_end) * 0.5 * (1 + math.cos(math.pi * progress)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
