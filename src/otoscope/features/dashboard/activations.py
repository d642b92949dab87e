"""Latent activations over whole clips: the model runs once per clip (batched) with the SAE spliced in.

A dashboard needs, per clip, only a few latents' traces (those whose examples sit in the clip) and the
clip's strongest latents; the dense ``[frames, d_sae]`` code is reduced to those right after each batch,
so memory stays at one batch's code however many clips and latents there are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping

import numpy as np
import torch

from otoscope.audio.io import split_windows

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel
    from otoscope.sae.model import SparseAutoencoder


@dataclass
class ClipRun:
    """What one clip's run keeps."""

    clip_index: int
    """Position of the clip in ``features.json``'s clip list (or the caller's list)."""
    samples: np.ndarray
    """``[samples]`` float32 audio at the model's rate."""
    sample_rate: int
    """Samples per second."""
    frames: int
    """Real (non-padding) encoder frames."""
    traces: dict[int, np.ndarray] = field(default_factory=dict)
    """``latent → [frames]`` float32 activations, for the requested latents and the clip's top latents."""
    top: list[tuple[int, float]] = field(default_factory=list)
    """The clip's strongest latents ``(index, max activation)``, strongest first (when asked for)."""


def clip_codes(model: "HookedAudioModel", sae: "SparseAutoencoder", hook: str, clips: list) -> list[torch.Tensor]:
    """``[frames, d_sae]`` latent activations on each clip's real frames, in one batched forward.

    A clip longer than a fixed input window (Whisper's 30 s) runs as consecutive windows whose frames are
    concatenated, so frame ``f`` of the result is frame ``f`` of the whole clip.
    """
    window = model.geometry.window_samples
    pieces, owner = [], []
    for i, clip in enumerate(clips):
        parts = split_windows(clip, window) if window and len(clip.samples) > window else [clip]
        pieces += parts
        owner += [i] * len(parts)
    name = f"{hook}.hook_sae_acts"
    with torch.no_grad(), model.add_sae(sae, hook):
        _, cache = model.run_with_cache(pieces, names_filter=name)
    codes = [cache.real(name, b).float().cpu() for b in range(len(pieces))]
    return [torch.cat([c for c, o in zip(codes, owner) if o == i]) for i in range(len(clips))]


def run_clips(model: "HookedAudioModel", sae: "SparseAutoencoder", hook: str, paths: Mapping[int, Path],
              wanted: Mapping[int, set[int]], top_k: int = 0, batch_size: int = 4) -> Iterator[ClipRun]:
    """Run every clip in ``paths`` once (``batch_size`` per forward) and yield what each needs.

    ``wanted[clip]`` are latents whose full trace is kept; ``top_k`` > 0 also keeps the clip's ``top_k``
    strongest latents (by their max over the clip) and their traces.
    """
    order = list(paths)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        clips = model.clips([str(paths[i]) for i in chunk])
        for index, clip, code in zip(chunk, clips, clip_codes(model, sae, hook, clips)):
            run = ClipRun(index, np.asarray(clip.samples, dtype=np.float32), clip.sample_rate, code.shape[0])
            if top_k > 0 and code.shape[0]:
                peak = code.max(dim=0).values  # [d_sae]
                values, latents = peak.topk(min(top_k, peak.numel()))
                run.top = [(int(i), float(v)) for i, v in zip(latents, values) if v > 0]
            for latent in set(wanted.get(index, ())) | {i for i, _ in run.top}:
                run.traces[latent] = code[:, latent].numpy().astype(np.float32)
            yield run
