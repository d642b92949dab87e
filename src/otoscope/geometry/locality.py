"""Attention locality: how far does the Whisper encoder need to look?

Reproduces the finding (er537/whisper_interpretability) that Whisper's encoder attention is mostly
local: restrict every encoder self-attention head to a band of ±k frames and transcribe. Restricting is
exact masking before the softmax (equivalently: probabilities outside the band set to zero and each
row renormalised), run with the fused SDPA kernel: one encoder pass per band width, then one batched decode of
all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import pandas as pd
import torch

from otoscope.errors import OtoscopeError

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel

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


def attention_locality(model: HookedAudioModel, audio, bands: Sequence[int | None] = DEFAULT_BANDS, max_new_tokens: int = 96,
                       reference: str | None = None) -> LocalityResult:
    """Transcribe one clip with encoder self-attention limited to ±k frames, for each k in ``bands``.

    ``reference``: the clip's unrestricted greedy transcript when already known (e.g. from the encoder lens);
    the unrestricted row then is not run again.
    """
    from otoscope.lens.encoder import word_error_rate
    from otoscope.models.decode import greedy_whisper

    if model.adapter.decoding != "seq2seq":
        raise OtoscopeError(f"{model.name}: attention locality is measured by WER, which needs a Whisper decoder.")
    clip = model.clips(audio)
    if len(clip) != 1:
        raise OtoscopeError("attention_locality takes one clip.")
    bands = list(dict.fromkeys(bands))
    if None not in bands:
        bands.append(None)
    run = [k for k in bands if k is not None or reference is None]
    frames = model.geometry.window_frames
    features = model.prepare(clip).features.to(model.device, model.dtype)  # [1, mels, 3000]
    states = []
    with torch.no_grad():
        # the encoder one band at a time (on CPU a batch of rows runs slower per row), the decoder batched
        for k in run:
            with model.attention_mask("encoder.blocks.*.attn.hook_pattern", band_mask(frames, k, model.device)[None, None]):
                states.append(model.model.get_encoder()(features).last_hidden_state)  # [1, frames, d_model]
        results = greedy_whisper(model, clip * len(run), None, max_new_tokens, encoder_states=torch.cat(states))
    texts = dict(zip(run, (r.text for r in results)))
    if reference is None:
        reference = texts[None]
    texts[None] = reference
    rows = [{"k": k, "seconds": None if k is None else k / model.geometry.frame_rate, "text": texts[k],
             "wer": word_error_rate(reference, texts[k])} for k in bands]
    return LocalityResult(pd.DataFrame(rows), reference)
