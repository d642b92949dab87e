"""Settings of a labelled-groups study (one dataclass; the CLI builds its flags from the same defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from otoscope.errors import OtoscopeError


@dataclass
class StudyConfig:
    """What ``otoscope study groups`` computes and how."""

    hooks: str | None = None
    """Hook names or globs, comma-separated. Default: the residual stream (audio: ``encoder.hook_embed`` and
    every block's ``hook_resid_post``; text: every ``text_encoder.*`` hook)."""
    sae_hook: str | None = None
    """The hook the SAE is trained on (one of the studied hooks). Default: the last studied hook."""
    sae_architecture: str = "relu"
    """``relu`` (L1 penalty, as in the pilot), ``topk``, ``batchtopk`` or ``jumprelu``."""
    sae_expansion: int = 8
    """``d_sae = expansion × d_model`` (the pilot: 768 → 6144)."""
    sae_k: int = 32
    """Active latents per position (TopK family)."""
    sae_l1: float = 0.3
    """ReLU: L1 coefficient (scale-free, see :class:`otoscope.sae.config.SAEConfig`). Lower than ``sae train``'s
    default: a study's SAE gets a few hundred steps, and at 1.0 or more every latent is switched off that soon."""
    sae_steps: int = 600
    """SAE training steps."""
    sae_batch_size: int = 256
    """Rows per SAE step (at most the study's rows)."""
    sae_lr: float = 1e-3
    """SAE peak learning rate."""
    sae: bool = True
    """Train the SAE (False: geometry and probes only)."""
    top_latents: int = 3
    """Most selective latents per label that are listed and ablated."""
    n_permutations: int = 1000
    """Label permutations for the p-values (the smallest p is ``1 / (n + 1)``)."""
    n_folds: int = 5
    """Cross-validation folds of the probes (at most the smallest label's size)."""
    max_positions: int = 16
    """Positions per item used by the per-frame / per-token probe."""
    control_snr_db: float = 40.0
    """Noise level of the same-input control (the input against itself plus white noise at this SNR)."""
    batch_size: int = 8
    """Items per forward pass."""
    seed: int = 0
    """Seed of permutations, folds, noise and SAE."""
    device: str | None = None
    """Where the model and the SAE run (default CPU)."""

    def __post_init__(self):
        from otoscope.sae.config import ARCHITECTURES  # here, not at the top: otoscope.sae imports torch

        if self.sae_architecture not in ARCHITECTURES:
            raise OtoscopeError(f"unknown SAE architecture '{self.sae_architecture}'; use one of {', '.join(ARCHITECTURES)}.")
        for name in ("sae_expansion", "sae_k", "sae_steps", "sae_batch_size", "top_latents", "n_permutations",
                     "max_positions", "batch_size"):
            if getattr(self, name) < 1:
                raise OtoscopeError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.n_folds < 2:
            raise OtoscopeError(f"n_folds must be at least 2 for cross-validation, got {self.n_folds}.")
        if self.sae_l1 < 0 or self.sae_lr <= 0:
            raise OtoscopeError("sae_l1 must be >= 0 and sae_lr > 0.")

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)
