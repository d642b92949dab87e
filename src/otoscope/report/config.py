"""What goes into a report: one validated dataclass shared by the Python API and ``otoscope report``."""

from __future__ import annotations

from dataclasses import dataclass

from otoscope.errors import OtoscopeError


@dataclass
class ReportConfig:
    """What goes into a report."""

    model: str = "whisper-tiny.en"
    """Model name, HF id or folder."""
    compare_model: str | None = None
    """A second model for cross-model CKA (same frame rate), e.g. ``whisper-base``."""
    labels: list[str] | None = None
    """One label per clip: enables group similarity and probes."""
    detailed_clips: int = 4
    """Clips that get a full per-clip lens section (the rest: transcript only)."""
    locality_bands: tuple[int | None, ...] = (2, 4, 8, 16, 32, 64, None)
    """Attention band half-widths (frames) for the locality curve; None is unrestricted."""
    locality_clips: int = 1
    """Clips the locality curve is measured on (it costs one batched run per clip)."""
    tuned_lens_steps: int = 20
    """Training steps of each tuned lens (0 disables them)."""
    tuned_lens_min_examples: int = 32
    """Fewest frames (encoder) or transcript tokens (decoder) a tuned lens is trained on; a quarter is held out.
    Below it the side is skipped with a note: on whisper-tiny.en the decoder lens trained on one 5 s clip's
    19 tokens came out worse than the logit lens on the held-out ones (its 384 × 385 parameters per layer
    overfit)."""
    pair: str | None = None
    """A minimal-pair folder (``otoscope pairs`` output): adds an activation-patching section (Whisper)."""
    sae: str | None = None
    """An SAE folder (``otoscope sae train`` output, SAELens or sparsify): adds a feature section, the
    strongest latents of each clip over time."""
    sae_dashboard: str | None = None
    """An ``otoscope sae dashboard`` folder for :attr:`sae`: the feature section links to its latent pages."""
    device: str | None = None
    """Where the model runs."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self):
        if self.detailed_clips < 0 or self.locality_clips < 0 or self.tuned_lens_steps < 0:
            raise OtoscopeError("detailed_clips, locality_clips and tuned_lens_steps must be >= 0.")
        if self.sae_dashboard is not None and self.sae is None:
            raise OtoscopeError("sae_dashboard (--sae-dashboard) needs the SAE itself: pass --sae SAE_DIR too.")
        if self.tuned_lens_min_examples < 8:
            raise OtoscopeError(f"tuned_lens_min_examples must be >= 8 (a quarter is held out), got {self.tuned_lens_min_examples}.")
