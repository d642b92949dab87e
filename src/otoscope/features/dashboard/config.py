"""What a dashboard shows and how it is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from otoscope.errors import OtoscopeError


@dataclass
class DashboardConfig:
    """Options of :func:`otoscope.features.dashboard.build_dashboard`."""

    max_latents: int | None = None
    """Pages for at most this many firing latents (most frequent first); None: every latent that fires."""
    top_examples: int = 8
    """Top activations played on each latent page (the features file keeps up to ``top_n``)."""
    quantile_examples: int = 2
    """Examples played from each quantile group."""
    clip_latents: int = 16
    """Rows of a clip page's latent × time heatmap: the clip's strongest latents."""
    max_clip_pages: int | None = 200
    """Clip pages for at most this many clips (those the latent pages cite first); None: every cited clip."""
    ablate_latents: int = 32
    """Encoder hooks: latents (in page order) whose removal is tested on their top clips; 0 turns it off."""
    ablate_clips: int = 2
    """Distinct top clips each ablation is transcribed on."""
    vocab_tokens: int = 10
    """Decoder hooks: promoted and suppressed tokens listed per latent."""
    neuronpedia: bool = False
    """Also write ``neuronpedia/batch-N.json`` in SAEDashboard/Neuronpedia's feature layout."""
    batch_size: int = 4
    """Clips per model forward (the dense ``[batch, 1500, d_sae]`` code of one batch is held at once)."""
    page_batch: int = 256
    """Latent pages rendered per batch (one progress step each; also one Neuronpedia file each)."""
    audio_root: Path | None = None
    """Folder the corpus's relative clip paths are under (default: as given, then beside the features folder)."""
    spans: Path | None = None
    """Word spans (``otoscope align --json`` lines) for the clip pages; default the folder's ``spans.jsonl``."""
    align_words: bool = True
    """Without spans, align words with the model (``model.word_timestamps``) when this otoscope has it."""
    model: str | None = None
    """Model to load instead of the one named in ``features.json``."""
    sae: Path | None = None
    """SAE folder to load instead of the one named in ``features.json``."""
    device: str | None = None
    """Where the model and SAE run (default CPU)."""
    progress: bool = True
    """Show progress bars."""
    extra: dict = field(default_factory=dict)
    """Free-form notes copied into ``dashboard.json``."""

    def __post_init__(self):
        for name in ("top_examples", "quantile_examples", "clip_latents", "ablate_latents", "ablate_clips", "vocab_tokens"):
            if getattr(self, name) < 0:
                raise OtoscopeError(f"{name} must be >= 0, got {getattr(self, name)}.")
        for name in ("max_latents", "max_clip_pages"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise OtoscopeError(f"{name} must be >= 1 (or None for no limit), got {value}.")
        if self.batch_size < 1 or self.page_batch < 1:
            raise OtoscopeError(f"batch_size and page_batch must be >= 1, got {self.batch_size} and {self.page_batch}.")
        self.audio_root = Path(self.audio_root) if self.audio_root is not None else None
        self.spans = Path(self.spans) if self.spans is not None else None
        self.sae = Path(self.sae) if self.sae is not None else None
