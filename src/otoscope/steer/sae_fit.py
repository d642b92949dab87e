"""Small SAEs for steering: one per encoder layer, trained with otoscope's own extractor and trainer on
the clips given (the fit set only), or read from an SAE folder the user passes.

Sized for a laptop CPU: a few thousand frames of a study's fit set train a TopK SAE of ``d_sae`` 1024
latents in well under a minute per layer on 2 cores; they are small, quickly trained SAEs, good enough to
find latents that separate speech from non-speech, not general-purpose dictionaries.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.audio.io import Clip
    from otoscope.sae.model import SparseAutoencoder


def layer_hook(layer: int) -> str:
    """The encoder hook the steering SAEs read: ``encoder.blocks.{layer}.hook_resid_post``."""
    return f"encoder.blocks.{layer}.hook_resid_post"


@dataclass
class SteerSAEConfig:
    """How the steering SAEs are trained (TopK, on the fit clips' real encoder frames)."""

    d_sae: int = 1024
    """Latents per SAE (a few thousand at most: the fit set has only thousands of frames)."""
    k: int = 16
    """Active latents per frame."""
    total_samples: int = 65_536
    """Frames trained on per SAE (the fit set's frames repeated in new orders)."""
    batch_size: int = 512
    """Frames per optimiser step."""
    seed: int = 0
    """Seed of the weights and the shuffling."""

    def __post_init__(self):
        if not 1 <= self.k <= self.d_sae:
            raise OtoscopeError(f"k must be in [1, d_sae={self.d_sae}], got {self.k}.")
        if self.batch_size < 1 or self.total_samples < self.batch_size:
            raise OtoscopeError("batch_size must be ≥ 1 and total_samples at least one batch.")


@dataclass
class SteerSAEs:
    """One SAE per encoder layer, and where they came from."""

    saes: dict[int, "SparseAutoencoder"]
    """Encoder layer → SAE on its ``hook_resid_post``."""
    source: str
    """``trained`` (on the fit clips) or the folder they were loaded from."""
    seconds: float = 0.0
    """Extraction + training time (0 when loaded)."""
    fvu: dict[int, float] | None = None
    """Per layer, the trainer's last fraction of variance unexplained (trained SAEs only)."""


def train_steer_saes(model, clips: Sequence["Clip"], layers: Sequence[int], config: SteerSAEConfig | None = None,
                     work: str | Path | None = None, progress: bool = False) -> SteerSAEs:
    """Extract ``layers``' activations over ``clips`` and train one TopK SAE per layer (in ``work``, or a temp folder)."""
    from otoscope.sae.extract import ExtractConfig, extract_activations
    from otoscope.sae.format import load_sae
    from otoscope.sae.train_config import TrainConfig
    from otoscope.sae.trainer import train_saes

    config = config or SteerSAEConfig()
    started = time.time()
    hooks = [layer_hook(i) for i in layers]
    with tempfile.TemporaryDirectory(prefix="otoscope-steer-sae-") as tmp:
        root = Path(work) if work is not None else Path(tmp)
        extract_activations(model, [c.samples for c in model.clips(list(clips))], root / "store",
                            ExtractConfig(hooks=hooks, dtype="float32", overwrite=True, progress=progress))
        train = TrainConfig(k=config.k, d_sae=config.d_sae, batch_size=config.batch_size, total_samples=config.total_samples,
                            seed=config.seed, device="cpu", checkpoint_every=None, init_samples=config.total_samples,
                            buffer_rows=config.total_samples, log_every=max(1, config.total_samples // config.batch_size // 4),
                            extra={"purpose": "otoscope steer: fit clips only"})
        result = train_saes(root / "store", root / "saes", train, resume=False, progress=progress)
        saes = {i: load_sae(result.saes[h]) for i, h in zip(layers, hooks)}
        fvu = {i: float(result.metrics[h].fvu) for i, h in zip(layers, hooks) if h in result.metrics}
    return SteerSAEs(saes, "trained", round(time.time() - started, 1), fvu)


def load_steer_saes(model, folder: str | Path, layers: Sequence[int] | None = None) -> SteerSAEs:
    """SAEs on encoder ``hook_resid_post`` hooks from ``folder`` (one SAE, or a folder of SAEs per hook)."""
    from otoscope.sae.format import load_sae, load_saes

    folder = Path(folder)
    found = {folder.name: load_sae(folder)} if (folder / "cfg.json").is_file() else load_saes(folder)
    saes = {}
    for sae in found.values():
        hook = sae.cfg.hook_name or ""
        parts = hook.split(".")
        if len(parts) == 4 and parts[0] == "encoder" and parts[1] == "blocks" and parts[3] == "hook_resid_post":
            layer = int(parts[2])
            if layers is None or layer in layers:
                if sae.d_in != model.config.d_model:
                    raise OtoscopeError(f"the SAE for {hook} reads d_in={sae.d_in} but {model.name} has d_model="
                                        f"{model.config.d_model}; pass SAEs trained on this model.")
                saes[layer] = sae
    if not saes:
        raise OtoscopeError(f"{folder} has no SAE on an encoder.blocks.N.hook_resid_post hook; train one with "
                            "'otoscope sae train' on encoder activations, or leave --sae out to train small ones.")
    return SteerSAEs(dict(sorted(saes.items())), str(folder))
