"""Gates: which clips or frames already look like the target class, scored inside the forward pass.

A gate projects an encoder activation on a direction and compares it with a threshold. Its clip score
is the mean projection over the clip's *real* frames. Hooks only see the padded 30 s window, so the real
frames are read off the encoder's input features: Whisper pads with zeros, whose log-mel is the clip's
floor value, and a frame counts as real up to the last one whose mel frames rise above that floor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from otoscope.errors import OtoscopeError

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel

MEL_PER_FRAME = 2  # Whisper's second convolution has stride 2: two mel frames per encoder frame
FLOOR_EPS = 1e-4  # log-mel values within this of the clip's minimum are padding (or digital silence)


def real_frame_counts(features: torch.Tensor) -> torch.Tensor:
    """``features`` ``[batch, mels, mel_frames]`` (Whisper log-mel) → real encoder frames per clip ``[batch]``.

    Counts frames up to the last mel frame above the clip's floor, so silence inside a clip counts and
    trailing digital silence does not (at least one frame is always real).
    """
    above = (features > features.amin(dim=(1, 2), keepdim=True) + FLOOR_EPS).any(dim=1)  # [batch, mel_frames]
    idx = torch.arange(above.shape[1], device=above.device)
    last = torch.where(above, idx, torch.full_like(idx, -1)).amax(dim=1)  # [batch]
    return ((last + MEL_PER_FRAME) // MEL_PER_FRAME).clamp_min(1)


def real_mask(counts: torch.Tensor, frames: int) -> torch.Tensor:
    """``[batch]`` real-frame counts → ``[batch, frames]`` bool mask."""
    return torch.arange(frames, device=counts.device)[None, :] < counts[:, None].to(torch.long)


def real_mean(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean of per-frame ``scores`` ``[batch, frames]`` over each clip's real frames → ``[batch]``."""
    mask = real_mask(counts.to(scores.device), scores.shape[1]).float()
    return (scores * mask).sum(1) / mask.sum(1)


def clip_scores(acts: torch.Tensor, vector: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean projection of ``acts`` ``[batch, frames, d_model]`` on unit ``vector`` over each clip's real frames → ``[batch]``."""
    return real_mean(acts.float() @ vector.to(acts.device, torch.float32), counts)


class GateState:
    """What the gate hooks learned during one forward pass, read by the steering hooks after them."""

    def __init__(self):
        self.counts: torch.Tensor | None = None
        """Real encoder frames per clip ``[batch]`` (from the features)."""
        self.open: torch.Tensor | None = None
        """``[batch]`` bool (clip mode) or ``[batch, frames]`` bool (frame mode): where to steer."""
        self.scores: torch.Tensor | None = None
        """The last clip scores ``[batch]`` (for reporting)."""


def feature_hook(model: HookedAudioModel, state: GateState):
    """A forward pre-hook on Whisper's encoder that records real-frame counts from its input features."""
    if model.adapter.input_kind != "mel" or model.geometry.window_frames is None:
        raise NotImplementedError(f"gated steering reads Whisper's padded features; {type(model.model).__name__} "
                                  "has no fixed window. Steer without a gate.")
    encoder = model.model.get_encoder()

    def pre(module, args, kwargs):
        features = args[0] if args else kwargs.get("input_features")
        if features is None:
            raise OtoscopeError("gated steering needs the encoder's input features.")
        state.counts = real_frame_counts(features)
        state.open = None
    return encoder.register_forward_pre_hook(pre, with_kwargs=True)


def gate_fn(gate, state: GateState):
    """Hook function at ``gate.hook``: scores the activation and sets ``state.open``.

    ``gate`` is a :class:`~otoscope.steer.direction.Gate` (projection on a vector) or a
    :class:`~otoscope.steer.latent_steer.LatentGate` (summed SAE latents): both score frames with
    ``gate.frame_scores(acts)`` → ``[batch, frames]``.
    """
    def fn(acts: torch.Tensor, hook):
        counts = state.counts if state.counts is not None else torch.full((acts.shape[0],), acts.shape[1])
        scores = gate.frame_scores(acts)  # [batch, frames]
        if gate.mode == "clip":
            state.scores = real_mean(scores, counts)
            state.open = state.scores > gate.threshold
        else:
            state.open = (scores > gate.threshold) & real_mask(counts.to(scores.device), scores.shape[1])
        return None
    return fn
