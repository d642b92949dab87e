"""The SAE latents most selective for non-speech at an encoder layer, and a clip gate built from them.

Class selectivity as in ``otoscope sae features`` (issue 9 §1): a latent's mean activation on non-speech
frames divided by its mean activation on speech frames (real frames only; > 2 selective, > 4 highly
selective; capped at :data:`SELECTIVITY_CAP`, which means "never fires on speech"). Latents that fire on
fewer than ``min_frequency`` of the non-speech frames are not candidates, however selective: a gate or an
edit built on rare latents would see nothing on most clips. Gates and clamps use :meth:`LatentStats.common`:
the highly selective latents (> 4) that fire on the most non-speech frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from otoscope.errors import OtoscopeError
from otoscope.steer.encoded import Encoded
from otoscope.steer.latent_steer import LatentGate
from otoscope.steer.sae_fit import layer_hook

if TYPE_CHECKING:
    from otoscope.sae.model import SparseAutoencoder

SELECTIVITY_CAP = 1000.0  # reported selectivity of a latent that never fires on speech
MIN_FREQUENCY = 0.05  # least fraction of non-speech frames a candidate latent fires on
N_LATENTS = 8  # latents summed by a latent gate / clamped by a latent steer
HIGHLY_SELECTIVE = 4.0  # issue 9 §1: selectivity > 4 is "highly selective"


@dataclass
class LatentStats:
    """Per-latent statistics at one layer on a labelled (speech / non-speech) clip set."""

    layer: int
    """Encoder block."""
    selectivity: torch.Tensor
    """``[d_sae]`` mean activation on non-speech frames / on speech frames (capped; NaN when 0/0)."""
    frequency: torch.Tensor
    """``[d_sae]`` fraction of all real frames where the latent fires."""
    frequency_nonspeech: torch.Tensor
    """``[d_sae]`` fraction of non-speech frames where it fires."""
    mean_active: torch.Tensor
    """``[d_sae]`` mean activation on the non-speech frames where it fires (0 when it never does)."""

    def top(self, n: int = N_LATENTS, min_frequency: float = MIN_FREQUENCY) -> list[int]:
        """The ``n`` most non-speech-selective latents firing on ≥ ``min_frequency`` of non-speech frames
        (ties broken by that frequency)."""
        ok = (self.frequency_nonspeech >= min_frequency) & (self.selectivity > 1)
        sel = torch.nan_to_num(self.selectivity, nan=0.0)
        order = sorted(torch.nonzero(ok).flatten().tolist(),
                       key=lambda i: (-float(sel[i]), -float(self.frequency_nonspeech[i]), i))
        return order[:n]

    def common(self, n: int = N_LATENTS, min_selectivity: float = HIGHLY_SELECTIVE,
               min_frequency: float = MIN_FREQUENCY) -> list[int]:
        """The ``n`` highly selective latents (selectivity > ``min_selectivity``) that fire on the most
        non-speech frames: what gates and clamps use. Ranking by selectivity alone prefers latents that fire
        on a few non-speech frames and never on the few fit speech clips; summed over a clip their score is
        tiny, so a gate's threshold sits just above zero and any held-out speech frame that fires one of
        them opens it."""
        ok = (self.frequency_nonspeech >= min_frequency) & (torch.nan_to_num(self.selectivity, nan=0.0) > min_selectivity)
        order = sorted(torch.nonzero(ok).flatten().tolist(), key=lambda i: (-float(self.frequency_nonspeech[i]), i))
        return order[:n]

    def rows(self, latents: list[int]) -> list[dict]:
        """One JSON-friendly row per latent."""
        return [{"latent": i, "selectivity": float(self.selectivity[i]), "frequency": float(self.frequency[i]),
                 "frequency_nonspeech": float(self.frequency_nonspeech[i]), "mean_active": float(self.mean_active[i])}
                for i in latents]


def latent_stats(speech: Encoded, nonspeech: Encoded, layer: int) -> LatentStats:
    """Selectivity and frequencies of every latent of the SAE at ``layer`` (both sets encoded with it)."""
    if layer not in speech.latent_sums or layer not in nonspeech.latent_sums:
        raise OtoscopeError(f"no SAE latents were recorded at encoder layer {layer}; encode with saes={{{layer}: sae}}.")
    s_sum, n_sum = speech.latent_sums[layer].double().sum(0), nonspeech.latent_sums[layer].double().sum(0)
    s_fire, n_fire = speech.latent_fires[layer].double().sum(0), nonspeech.latent_fires[layer].double().sum(0)
    s_frames, n_frames = float(speech.n_frames.sum()), float(nonspeech.n_frames.sum())
    mean_in, mean_out = n_sum / n_frames, s_sum / s_frames
    ratio = mean_in / mean_out
    ratio = torch.where(mean_out > 0, ratio, torch.where(mean_in > 0, torch.full_like(ratio, SELECTIVITY_CAP), ratio))
    return LatentStats(layer, ratio.clamp_max(SELECTIVITY_CAP).float(), ((s_fire + n_fire) / (s_frames + n_frames)).float(),
                       (n_fire / n_frames).float(), torch.where(n_fire > 0, n_sum / n_fire.clamp_min(1), 0.0).float())


def clip_scores(encoded: Encoded, layer: int, latents: list[int]) -> torch.Tensor:
    """``[clips]`` mean over real frames of the summed activation of ``latents`` (what a live latent gate scores)."""
    return encoded.latent_sums[layer][:, latents].sum(1).float() / encoded.n_frames.float()


def threshold_above(speech_scores: torch.Tensor, nonspeech_scores: torch.Tensor) -> tuple[float, float, float]:
    """A threshold just above every speech score (halfway to the next non-speech score above it, when there is
    one) → (threshold, accuracy on both sets, gap to the nearest score in standard deviations of all scores)."""
    top_speech = float(speech_scores.max())
    above = nonspeech_scores[nonspeech_scores > top_speech]
    threshold = (top_speech + float(above.min())) / 2 if above.numel() else top_speech + 1e-3
    accuracy = float(((speech_scores <= threshold).sum() + (nonspeech_scores > threshold).sum())
                     / (len(speech_scores) + len(nonspeech_scores)))
    both = torch.cat([speech_scores, nonspeech_scores])
    spread = float(both.std()) or 1.0
    return threshold, accuracy, float(both.sub(threshold).abs().min()) / spread


@dataclass
class LatentGateFit:
    """A latent clip gate fitted at one layer."""

    layer: int
    """Encoder block."""
    gate: LatentGate
    """The gate (its latents: the layer's top non-speech latents)."""
    accuracy: float
    """Fraction of fit clips on the right side of the threshold."""
    margin: float
    """Gap between the threshold and the nearest fit clip, in standard deviations of the scores."""


def fit_latent_gate(sae: "SparseAutoencoder", speech: Encoded, nonspeech: Encoded, layer: int,
                    latents: list[int]) -> LatentGateFit:
    """A clip gate on the summed activation of ``latents`` at ``layer``, threshold above every fit speech clip."""
    if not latents:
        raise OtoscopeError(f"no latent at encoder layer {layer} fires on ≥ {MIN_FREQUENCY:.0%} of non-speech frames "
                            "more than on speech; train the SAE longer or on more clips.")
    threshold, accuracy, margin = threshold_above(clip_scores(speech, layer, latents), clip_scores(nonspeech, layer, latents))
    return LatentGateFit(layer, LatentGate(layer_hook(layer), sae, latents, threshold, "clip"), accuracy, margin)


def latent_gate_opens(fit: LatentGateFit, encoded: Encoded) -> torch.Tensor:
    """``[clips]`` bool: where ``fit``'s gate opens on cached latent sums (the same score as the live gate)."""
    return clip_scores(encoded, fit.layer, fit.gate.latents) > fit.gate.threshold
