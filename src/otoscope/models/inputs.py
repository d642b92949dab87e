"""Turning clips (and teacher-forced text) into model inputs, with the real-frame mask."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from otoscope.audio.frames import WHISPER_MEL_HOP, FrameGeometry
from otoscope.audio.io import Clip
from otoscope.errors import AudioError


@dataclass
class ModelInputs:
    """One batch ready for the model."""

    clips: list[Clip]
    """The clips, at the model's sample rate."""
    features: torch.Tensor
    """Whisper: log-mel ``[batch, mels, 3000]``; wav2vec2 family: waveform ``[batch, samples]``."""
    frame_mask: torch.Tensor
    """``[batch, frames]`` True for encoder frames that carry real audio."""
    attention_mask: torch.Tensor | None = None
    """``[batch, samples]`` waveform mask for models that take one, else None."""
    decoder_input_ids: torch.Tensor | None = None
    """Whisper: ``[batch, tokens]`` prompt + task prefix + teacher-forced text (right-padded with EOT)."""
    token_mask: torch.Tensor | None = None
    """``[batch, tokens]`` True for real decoder tokens."""
    prefix_len: list[int] | None = None
    """Per clip, the number of tokens before the teacher-forced text (prompt + task prefix)."""
    text_mask: torch.Tensor | None = None
    """``[batch, tokens]`` True for real prompt tokens of a text encoder (MusicGen), else None."""


def whisper_features(extractor, clips: list[Clip], geometry: FrameGeometry) -> torch.Tensor:
    """Log-mel features ``[batch, mels, 2 · window frames]``: each clip zero-padded to the 30 s window (3000 mel
    frames), cut to a shorter encoder window when one is set (``HookedAudioModel.encoder_window``)."""
    limit = geometry.window_samples
    for clip in clips:
        if limit is not None and len(clip.samples) > limit:
            raise AudioError(f"{clip.name} is {clip.seconds:.1f} s but Whisper's encoder sees one "
                             f"{limit / geometry.sample_rate:g} s window; trim or split it "
                             "(otoscope.audio.split_windows), or use model.transcribe, which chunks.")
    out = extractor([c.samples for c in clips], sampling_rate=geometry.sample_rate, return_tensors="pt")
    features = out.input_features  # [batch, mels, 3000]
    if geometry.window_frames is not None:  # a shortened encoder window (model.encoder_window): its first mel frames
        features = features[..., : geometry.window_frames * (geometry.samples_per_frame // WHISPER_MEL_HOP)]
    return features


def waveform_features(extractor, clips: list[Clip], geometry: FrameGeometry):
    """Normalised, right-padded waveforms ``[batch, samples]`` and their mask."""
    out = extractor([c.samples for c in clips], sampling_rate=geometry.sample_rate, padding=True,
                    return_attention_mask=True, return_tensors="pt")
    mask = out["attention_mask"] if getattr(extractor, "return_attention_mask", False) else None
    return out.input_values, mask


def pad_tokens(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token rows → ``(ids [batch, tokens], mask [batch, tokens])``."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = True
    return ids, mask
