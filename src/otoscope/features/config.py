"""What a feature-statistics pass computes: :class:`FeaturesConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from otoscope.errors import OtoscopeError


@dataclass
class FeaturesConfig:
    """Options of :func:`otoscope.features.feature_stats`."""

    top_n: int = 20
    """Top-activating frames kept per latent (sorted by value, ties by clip then frame)."""
    quantiles: int = 10
    """Activation quantile groups per latent (weak to strong activations), each with ``per_quantile`` examples."""
    per_quantile: int = 5
    """Examples per quantile group (a uniform sample of the group's frames; see :mod:`otoscope.features.stats`)."""
    hist_min: float = -4.0
    """log10 of the lowest histogram edge; smaller activations count in the first bin."""
    hist_max: float = 4.0
    """log10 of the highest histogram edge; larger activations count in the last bin."""
    hist_bins: int = 80
    """Histogram bins between ``hist_min`` and ``hist_max`` (shared by all latents; 0.1 decade by default)."""
    coactivation: bool = True
    """Count co-firing of every latent pair (a ``[d_sae, d_sae]`` float32 matrix: 150 MB for 6144 latents)."""
    coactivation_top: int = 10
    """Most co-activating latents listed per latent (by Jaccard index of their firing frames)."""
    labels: list[str] = field(default_factory=list)
    """Manifest label keys of the clips to break activations down by (e.g. ``kind``, ``speaker``)."""
    spans: str | Path | None = None
    """JSONL of word spans (``otoscope align --json`` lines): adds the per-frame label key ``word`` and the
    temporal consistency score."""
    max_classes: int = 1000
    """Label values kept per key (the most frequent; the rest count as ``<other>``): bounds memory for words."""
    hook: str | None = None
    """Hook point the SAE reads (default: the one in its metadata)."""
    batch_size: int = 8
    """Clips (or 30 s windows) per forward pass."""
    max_clips: int | None = None
    """Only the first clips of the corpus."""
    seed: int = 0
    """Seed of the hash that samples quantile examples (the same seed gives the same examples on any ranks)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self):
        for name in ("top_n", "quantiles", "per_quantile", "hist_bins", "batch_size", "max_classes"):
            if getattr(self, name) < 1:
                raise OtoscopeError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.coactivation_top < 0:
            raise OtoscopeError(f"coactivation_top must be ≥ 0, got {self.coactivation_top}.")
        if not self.hist_min < self.hist_max:
            raise OtoscopeError(f"hist_min ({self.hist_min}) must be below hist_max ({self.hist_max}); they are "
                                "log10 activations, e.g. -4 and 4.")
        if self.max_clips is not None and self.max_clips < 1:
            raise OtoscopeError(f"max_clips must be at least 1, got {self.max_clips}.")
        if isinstance(self.labels, str):
            self.labels = [self.labels]
        self.labels = list(dict.fromkeys(self.labels))
        if self.spans is not None and not Path(self.spans).is_file():
            raise OtoscopeError(f"spans file not found: {self.spans}; write it with `otoscope align FILES --json`.")
