"""What a sparse autoencoder is: its architecture, widths and sparsity settings.

Training settings (learning rate, batch size, schedules) live in :mod:`otoscope.sae.train_config`;
this config is what a saved SAE needs to be used again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from otoscope.errors import OtoscopeError

Architecture = Literal["topk", "batchtopk", "relu", "jumprelu"]
ARCHITECTURES: tuple[str, ...] = ("topk", "batchtopk", "relu", "jumprelu")


@dataclass
class SAEConfig:
    """Architecture and widths of one sparse autoencoder.

    ``topk`` keeps the ``k`` largest (ReLU'd) latents of every input; ``batchtopk`` keeps the
    ``k × batch`` largest over a whole batch while training and a learned global threshold afterwards;
    ``relu`` is the classic ReLU SAE trained with an L1 penalty; ``jumprelu`` zeroes every latent below
    a learned per-latent threshold and is trained with an L0 penalty through a straight-through estimator.
    """

    d_in: int
    """Width of the activations the SAE reads (``d_model``, or ``heads × d_head`` for per-head hooks)."""
    d_sae: int | None = None
    """Number of latents. Default: ``d_in × expansion``."""
    architecture: str = "topk"
    """``topk``, ``batchtopk``, ``relu`` or ``jumprelu``."""
    expansion: int = 16
    """Latents per input dimension, used when ``d_sae`` is not given."""
    k: int | None = 32
    """Active latents per input for ``topk`` (average per input for ``batchtopk``); unused otherwise."""
    l1_coefficient: float = 5.0
    """``relu`` only: weight of the L1 penalty ``Σ|z|·‖W_dec row‖``, divided by the batch's RMS norm
    (so the coefficient does not depend on the activations' scale)."""
    l0_coefficient: float = 1e-3
    """``jumprelu`` only: weight of the (straight-through) L0 penalty, latents per input."""
    jumprelu_bandwidth: float = 1e-3
    """``jumprelu`` only: width of the rectangle kernel of the straight-through estimator, in units
    of the normalised activations."""
    jumprelu_init_threshold: float = 1e-3
    """``jumprelu`` only: initial threshold of every latent."""
    batchtopk_threshold_momentum: float = 0.01
    """``batchtopk`` only: EMA rate of the inference threshold (the smallest kept activation per batch)."""
    dtype: str = "float32"
    """Parameter dtype: ``float32`` (train in float32; autocast handles bfloat16 on GPU)."""
    model_name: str | None = None
    """Model the activations come from (saved as SAELens ``metadata.model_name``)."""
    hook_name: str | None = None
    """Canonical otoscope hook name the SAE reads, e.g. ``encoder.blocks.3.hook_resid_post``."""
    hook_shape: list[int] | None = None
    """Trailing shape of the hook's activation when it is not flat (per-head hooks: ``[heads, d_head]``)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form metadata kept with the SAE (dataset, training summary, seeds)."""

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise OtoscopeError(f"unknown SAE architecture '{self.architecture}'; use one of {', '.join(ARCHITECTURES)}.")
        if not isinstance(self.d_in, int) or self.d_in < 1:
            raise OtoscopeError(f"d_in must be a positive integer, got {self.d_in!r}; it is the activation width.")
        if self.d_sae is None:
            if self.expansion < 1:
                raise OtoscopeError(f"expansion must be at least 1, got {self.expansion}; or pass d_sae.")
            self.d_sae = self.d_in * self.expansion
        if self.d_sae < 1:
            raise OtoscopeError(f"d_sae must be positive, got {self.d_sae}.")
        if self.architecture in ("topk", "batchtopk"):
            if self.k is None or self.k < 1:
                raise OtoscopeError(f"{self.architecture} needs k >= 1 (active latents per input), got {self.k}.")
            if self.k > self.d_sae:
                raise OtoscopeError(f"k={self.k} is larger than d_sae={self.d_sae}; lower k or raise the expansion.")
        if self.l1_coefficient < 0 or self.l0_coefficient < 0:
            raise OtoscopeError("sparsity coefficients must be >= 0.")
        if self.jumprelu_bandwidth <= 0 or self.jumprelu_init_threshold <= 0:
            raise OtoscopeError("jumprelu_bandwidth and jumprelu_init_threshold must be > 0.")
        if not 0 < self.batchtopk_threshold_momentum <= 1:
            raise OtoscopeError("batchtopk_threshold_momentum must be in (0, 1].")
        if self.dtype not in ("float32", "float16", "bfloat16", "float64"):
            raise OtoscopeError(f"unknown dtype '{self.dtype}'; use float32, bfloat16, float16 or float64.")

    @property
    def sparse(self) -> bool:
        """True for the TopK family, whose latents are computed and decoded sparsely."""
        return self.architecture in ("topk", "batchtopk")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SAEConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})
