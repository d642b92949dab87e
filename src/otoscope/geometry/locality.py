"""Attention locality: how far does the Whisper encoder need to look?

Reproduces the finding (er537/whisper_interpretability) that Whisper's encoder attention is mostly
local: restrict every encoder self-attention head to a band of ±k frames and transcribe. Restricting is
exact masking before the softmax (equivalently: probabilities outside the band set to zero and each
row renormalised), run with the fused SDPA kernel. All band widths run as one batch (one row per k), so the encoder runs once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import torch

from otoscope.errors import OtoscopeError

DEFAULT_BANDS = (1, 2, 4, 8, 16, 32, 64, None)  # None: unrestricted


@dataclass
class LocalityResult:
    """WER against band half-width k."""

    table: pd.DataFrame
    """One row per k: k (frames, None = full), seconds (k / frame rate), text, wer."""
    reference: str
    """The unrestricted transcript the WERs are measured against."""


def band_mask(n: int, k: int | None, device=None) -> torch.Tensor:
    """``[n, n]`` bool: True where |query - key| <= k (all True for k None)."""
    if k is None:
        return torch.ones(n, n, dtype=torch.bool, device=device)
    pos = torch.arange(n, device=device)
    return (pos[:, None] - pos[None, :]).abs() <= k


def attention_locality(model, audio, bands: Sequence[int | None] = DEFAULT_BANDS, max_new_tokens: int = 96,
                       reference: str | None = None) -> LocalityResult:
    """Transcribe one clip with encoder self-attention limited to ±k frames, for each k in ``bands``.

    ``reference``: the clip's unrestricted greedy transcript when already known (e.g. from the encoder lens);
    the unrestricted row then is not run again.
    """
    from otoscope.lens.encoder import word_error_rate

    if not model.is_whisper:
        raise OtoscopeError(f"{model.name}: attention locality is measured by WER, which needs a Whisper decoder.")
    clip = model.clips(audio)
    if len(clip) != 1:
        raise OtoscopeError("attention_locality takes one clip.")
    bands = list(dict.fromkeys(bands))
    if None not in bands:
        bands.append(None)
    run = [k for k in bands if k is not None or reference is None]
    frames = model.geometry.window_frames
    masks = torch.stack([band_mask(frames, k) for k in run])  # [bands run, frames, frames]

    # [bands, 1, frames, frames]: one band width per batch row, the same for every head
    with torch.no_grad(), model.attention_mask("encoder.blocks.*.attn.hook_pattern", masks[:, None]):
        results = model.transcribe(clip * len(run), batch_size=len(run), max_new_tokens=max_new_tokens)
    texts = dict(zip(run, (r.text for r in results)))
    if reference is None:
        reference = texts[None]
    texts[None] = reference
    rows = [{"k": k, "seconds": None if k is None else k / model.geometry.frame_rate, "text": texts[k],
             "wer": word_error_rate(reference, texts[k])} for k in bands]
    return LocalityResult(pd.DataFrame(rows), reference)
