"""Encoding a clip set once for many decoder-side experiments: encoder output, per-layer clip means, first-step logits.

Decoder-side interventions leave the encoder alone, so a sweep over layers and strengths decodes from
these cached encoder states instead of re-running the encoder for every setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch
from tqdm.auto import tqdm

from otoscope.audio.io import Clip
from otoscope.errors import OtoscopeError
from otoscope.models.inputs import whisper_features
from otoscope.steer.gate import real_frame_counts, real_mask

if TYPE_CHECKING:
    from otoscope.sae.model import SparseAutoencoder


@dataclass
class Encoded:
    """A clip set run through the encoder once."""

    clips: list[Clip]
    """The clips, in order."""
    states: torch.Tensor
    """``[clips, frames, d_model]`` encoder output (what the decoder attends to)."""
    layer_means: torch.Tensor
    """``[clips, layers, d_model]`` mean over each clip's real frames of every ``encoder.blocks.*.hook_resid_post``."""
    frame_sums: torch.Tensor
    """``[layers, d_model]`` sum over all clips' real frames (for frame-weighted class means)."""
    frame_norm_sums: torch.Tensor
    """``[layers]`` sum of activation norms over all real frames (for the mean norm)."""
    n_frames: torch.Tensor
    """``[clips]`` real frames per clip (as the live gate counts them)."""
    latent_sums: dict[int, torch.Tensor] = field(default_factory=dict)
    """Per encoder layer with an SAE: ``[clips, d_sae]`` sum of each latent's activation over the clip's real frames."""
    latent_fires: dict[int, torch.Tensor] = field(default_factory=dict)
    """Per encoder layer with an SAE: ``[clips, d_sae]`` real frames where each latent fires (> 0)."""

    @property
    def mean_norms(self) -> torch.Tensor:
        """``[layers]`` mean activation norm over all real frames."""
        return self.frame_norm_sums / self.n_frames.sum()

    def __add__(self, other: "Encoded") -> "Encoded":
        """Both sets, rows of ``self`` first."""
        layers = self.latent_sums.keys() & other.latent_sums.keys()
        return Encoded(self.clips + other.clips, torch.cat([self.states, other.states]),
                       torch.cat([self.layer_means, other.layer_means]), self.frame_sums + other.frame_sums,
                       self.frame_norm_sums + other.frame_norm_sums, torch.cat([self.n_frames, other.n_frames]),
                       {i: torch.cat([self.latent_sums[i], other.latent_sums[i]]) for i in layers},
                       {i: torch.cat([self.latent_fires[i], other.latent_fires[i]]) for i in layers})


@torch.no_grad()
def encode(model, clips: Sequence[Clip], batch_size: int = 8, progress: bool = False,
           saes: dict[int, "SparseAutoencoder"] | None = None) -> Encoded:
    """Run Whisper's encoder on ``clips`` once, keeping what decoder-side steering and gates need.

    With ``saes`` (encoder layer → SAE on its ``hook_resid_post``), also each latent's activation sum and
    firing count over every clip's real frames (``latent_sums``, ``latent_fires``).
    """
    saes = saes or {}
    latent_sums: dict[int, list] = {i: [] for i in saes}
    latent_fires: dict[int, list] = {i: [] for i in saes}
    hooks = [f"encoder.blocks.{i}.hook_resid_post" for i in range(model.n_layers)]
    clips = model.clips(list(clips))
    states, means, counts = [], [], []
    sums = torch.zeros(len(hooks), model.config.d_model)
    norms = torch.zeros(len(hooks))
    bar = tqdm(total=len(clips), desc="encode", unit="clip", disable=not progress)
    for start in range(0, len(clips), batch_size):
        batch = clips[start : start + batch_size]
        features = whisper_features(model.feature_extractor, batch, model.geometry).to(model.device, model.dtype)
        grabbed: dict[str, torch.Tensor] = {}
        with model.hooks([(h, lambda t, hook: grabbed.__setitem__(hook.name, t)) for h in hooks]):
            out = model.model.get_encoder()(features).last_hidden_state  # [batch, frames, d_model]
        n = real_frame_counts(features)
        mask = real_mask(n, out.shape[1]).float()[:, None, :, None]  # [batch, 1, frames, 1]
        acts = torch.stack([grabbed[h] for h in hooks], 1).float()  # [batch, layers, frames, d_model]
        means.append((acts * mask).sum(2) / n[:, None, None])
        sums += (acts * mask).sum((0, 2)).cpu()
        norms += (acts.norm(dim=-1) * mask[..., 0]).sum((0, 2)).cpu()
        for i, sae in saes.items():
            for b in range(acts.shape[0]):
                z = sae.encode(acts[b, i, : int(n[b])].to(sae.device))  # [real frames, d_sae]
                latent_sums[i].append(z.sum(0).cpu())
                latent_fires[i].append((z > 0).sum(0).cpu())
        states.append(out.cpu())
        counts.append(n.cpu())
        bar.update(len(batch))
    bar.close()
    return Encoded(clips, torch.cat(states), torch.cat(means).cpu(), sums, norms, torch.cat(counts),
                   {i: torch.stack(v) for i, v in latent_sums.items()}, {i: torch.stack(v) for i, v in latent_fires.items()})


@torch.no_grad()
def first_step(model, states: torch.Tensor, hooks: Sequence[str] = ()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Decoder logits ``[clips, prefix, vocab]`` for the task prefix, and ``hooks``' activations at the last prefix position."""
    prefix = torch.tensor([model.task_prefix()] * states.shape[0], device=model.device)
    grabbed: dict[str, torch.Tensor] = {}
    with model.hooks([(h, lambda t, hook: grabbed.__setitem__(hook.name, t[:, -1].float().cpu())) for h in hooks]):
        logits = model.model(encoder_outputs=(states.to(model.device, model.dtype),), decoder_input_ids=prefix).logits
    return logits.float().cpu(), grabbed


def no_speech_probs(model, states: torch.Tensor) -> torch.Tensor:
    """Whisper's no-speech probability per clip ``[clips]`` from cached encoder states (see
    :func:`otoscope.models.safeguards.no_speech_probs`: the quantity openai/whisper gates at 0.6)."""
    from otoscope.models import safeguards

    token = safeguards.no_speech_token(model)
    if token is None:
        raise OtoscopeError(f"{model.name}'s vocabulary has no no-speech token (<|nocaptions|> or <|nospeech|>); "
                            "the study needs a Whisper checkpoint with one.")
    logits, _ = first_step(model, states)
    return torch.tensor(safeguards.no_speech_probs(logits[:, 0], token))
