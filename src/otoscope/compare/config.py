"""What ``otoscope compare`` measures and how hard it tries: one dataclass, validated on construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from otoscope.errors import OtoscopeError

LAYER_PATTERN = r"^(?P<stack>\w+)\.(?:hook_embed|blocks\.(?P<layer>\d+)\.hook_resid_post)$"
"""The default layer hooks: every stack's embedding output and each block's residual stream after it."""


@dataclass
class CompareConfig:
    """Settings of a checkpoint comparison (model A: the reference; model B: the fine-tune or adapter)."""

    hooks: str | list[str] | None = None
    """Layer hooks to compare activations at (a name, glob or list). None: ``{stack}.hook_embed`` and every
    ``{stack}.blocks.{L}.hook_resid_post`` of each model (encoder, and decoder for Whisper)."""
    max_clips: int | None = 32
    """Use at most this many clips of ``data`` (the first ones, in order). None: all."""
    positions_per_clip: int | None = 128
    """Keep at most this many positions (frames or tokens) per clip and layer, the same ones in both models,
    sampled with ``seed``: it bounds memory whatever the clip lengths. None: every real position."""
    batch_size: int = 4
    """Clips per forward pass."""
    rank_rtol: float = 1e-3
    """Effective (numerical) rank of a weight delta: singular values above ``rank_rtol × σ₁`` count (and
    above the float rounding floor of the weights, see :mod:`otoscope.compare.weights`)."""
    sae: bool = True
    """Measure how much worse an SAE fitted to A's activations reconstructs B's (FVU increase per layer)."""
    sae_dir: str | None = None
    """A folder of SAEs trained on model A (``otoscope sae train`` output: one sub-folder per hook). None:
    train a small TopK SAE per layer here, on A's activations of ``data``."""
    sae_steps: int = 100
    """Optimiser steps per SAE trained here."""
    sae_expansion: int = 4
    """Latents per input dimension of the SAEs trained here."""
    sae_k: int = 16
    """Active latents per row of the SAEs trained here."""
    sae_lr: float = 2e-3
    """Peak learning rate of the SAEs trained here: a short run on few rows needs more than the trainer's
    default for long runs (on tiny.en's layers, 100 steps at 2e-3 fit A's rows to FVU ≈ 0.01–0.02)."""
    sae_batch_size: int = 256
    """Rows per optimiser step of the SAEs trained here (fewer when the data has fewer rows)."""
    pairs: str | None = None
    """A minimal-pair folder (``otoscope pairs`` output, with ``pair.json``) or a folder of them: patch each
    pair exactly on both models and report how the patching map moved. None: no patching."""
    patch_hooks: str = "encoder.blocks.*.hook_resid_post"
    """Hooks to patch (name or glob), as ``otoscope patch --hooks``."""
    patch_window: float | None = 10
    """Encoder frames per patching cell (None: one cell per hook), as ``otoscope patch --window``."""
    top_changes: int = 10
    """Patching cells with the largest change to list per pair."""
    check_base: bool = True
    """Refuse a PEFT adapter whose ``adapter_config.json`` names another base model than model A."""
    device: str | None = None
    """Where the models run (default CPU)."""
    seed: int = 0
    """Seed of the position sampling and the SAE training."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self):
        for name in ("max_clips", "positions_per_clip"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise OtoscopeError(f"{name} must be at least 1 (or None for no limit), got {value}.")
        for name in ("batch_size", "sae_steps", "sae_expansion", "sae_k", "sae_batch_size", "top_changes"):
            if getattr(self, name) < 1:
                raise OtoscopeError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if not self.sae_lr > 0:
            raise OtoscopeError(f"sae_lr must be positive, got {self.sae_lr}.")
        if not 0 < self.rank_rtol < 1:
            raise OtoscopeError(f"rank_rtol is a fraction of the largest singular value, in (0, 1); got {self.rank_rtol}.")
        if self.patch_window is not None and self.patch_window <= 0:
            raise OtoscopeError(f"patch_window must be > 0 frames (or None for one cell per hook), got {self.patch_window}.")
        if self.positions_per_clip is not None and self.positions_per_clip < 4:
            raise OtoscopeError("positions_per_clip must be at least 4 (CKA's unbiased estimator needs 4 rows).")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)
