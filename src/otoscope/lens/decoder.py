"""Decoder logit lens (Whisper) and CTC-head lens (wav2vec2 / HuBERT / WavLM with a CTC head).

Decoder: the residual after each decoder block → the decoder's final layer norm → the unembedding,
at every position of the model's own greedy transcript (teacher-forced). For each layer and position:
the rank and probability of the token the full model finally emits there.

CTC: each encoder block's residual → (the final layer norm, in pre-norm encoders) → the CTC head, at
every real frame: rank and probability of the frame's final argmax token, and the greedy CTC text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import torch

from otoscope.errors import OtoscopeError

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel


@dataclass
class DecoderLensResult:
    """Per layer and position: how early the decoder settles on each emitted token."""

    table: pd.DataFrame
    """One row per (layer, position): layer, position, token, rank (0 = top), prob."""
    transcript: str
    """The full model's greedy transcript (the tokens being tracked)."""
    tokens: list[str]
    """The tracked tokens, as text pieces."""

    def summary(self) -> pd.DataFrame:
        """Per layer: mean probability, top-1 rate and median rank of the emitted tokens."""
        grouped = self.table.groupby("layer")
        return pd.DataFrame({"mean_prob": grouped["prob"].mean(), "top1": grouped["rank"].apply(lambda r: float((r == 0).mean())),
                             "median_rank": grouped["rank"].median()}).reset_index()


def _rank_and_prob(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # logits [layers, positions, vocab]; target [positions]
    probs = torch.softmax(logits.float(), dim=-1)
    idx = target[None, :, None].expand(logits.shape[0], -1, 1)
    chosen = logits.gather(-1, idx)  # [layers, positions, 1]
    rank = (logits > chosen).sum(-1)  # tokens strictly better than the target
    return rank, probs.gather(-1, idx)[..., 0]


def decoder_logit_lens(model: HookedAudioModel, audio, max_new_tokens: int = 96, transcription=None,
                       encoder_out: torch.Tensor | None = None) -> DecoderLensResult:
    """Decoder logit lens on the model's own greedy transcript of one clip (Whisper).

    ``transcription`` (a :class:`~otoscope.models.decode.Transcription` of this clip) skips re-decoding;
    ``encoder_out`` ``[1, frames, d_model]`` (the clip's encoder output, e.g. from the encoder lens) skips
    re-running the encoder.
    """
    if "decoder" not in model.adapter.lens_kinds:
        raise OtoscopeError(f"{model.name} has no decoder; use ctc_lens for CTC models.")
    clip = model.clips(audio)
    if len(clip) != 1:
        raise OtoscopeError("decoder_logit_lens takes one clip.")
    result = transcription or model.transcribe(clip, max_new_tokens=max_new_tokens)[0]
    emitted = result.tokens + [model.eot]
    inputs = model.prepare(clip, tokens=result.tokens)
    names = [f"decoder.blocks.{i}.hook_resid_post" for i in range(model.n_decoder_layers)]
    start = inputs.prefix_len[0] - 1  # position whose next token is the first emitted one
    if encoder_out is None:
        _, cache = model.run_with_cache(inputs, names_filter=names)
        resid = cache.stack("decoder.blocks.*.hook_resid_post")[:, 0]  # [layers, tokens, d_model]
    else:
        grabbed: dict[str, torch.Tensor] = {}
        with torch.no_grad(), model.hooks([(n, lambda t, hook: grabbed.__setitem__(hook.name, t)) for n in names]):
            model.model(encoder_outputs=(encoder_out.to(model.device, model.dtype),),
                        decoder_input_ids=inputs.decoder_input_ids.to(model.device), use_cache=False)
        resid = torch.stack([grabbed[n][0] for n in names])
    resid = resid[:, start : start + len(emitted)]  # [layers, positions, d_model]
    with torch.no_grad():
        logits = model.adapter.readout("decoder")(resid)
    rank, prob = _rank_and_prob(logits, torch.tensor(emitted))
    pieces = [model.tokenizer.decode([t]) for t in emitted]
    rows = [{"layer": layer, "position": pos, "token": pieces[pos], "rank": int(rank[layer, pos]),
             "prob": float(prob[layer, pos])} for layer in range(len(names)) for pos in range(len(emitted))]
    return DecoderLensResult(pd.DataFrame(rows), result.text, pieces)


@dataclass
class CTCLensResult:
    """Per layer: how much of the CTC head's final frame-wise decision is already readable."""

    table: pd.DataFrame
    """One row per layer: mean prob and top-1 agreement of each frame's final argmax, and the greedy text."""


def ctc_lens(model: HookedAudioModel, audio) -> CTCLensResult:
    """CTC-head lens of one clip on a wav2vec2-family model with a CTC head."""
    if not model.adapter.has_ctc_head:
        raise OtoscopeError(f"{model.name} has no CTC head: the CTC lens needs a fine-tuned CTC checkpoint.")
    names = [f"encoder.blocks.{i}.hook_resid_post" for i in range(model.n_layers)]
    logits_final, cache = model.run_with_cache(audio, names_filter=names)
    n = cache.n_frames(0)
    final = logits_final[0, :n].argmax(-1)
    resid = cache.stack("encoder.blocks.*.hook_resid_post")[:, 0, :n]
    with torch.no_grad():
        logits = model.adapter.readout("encoder")(resid)  # [layers, frames, vocab]: final norm (pre-norm encoders) and CTC head
    rank, prob = _rank_and_prob(logits, final)
    rows = []
    for layer in range(len(names)):
        ids = logits[layer].argmax(-1).tolist()
        text = model.tokenizer.decode(ids) if model.tokenizer is not None else ""
        rows.append({"layer": layer, "mean_prob": float(prob[layer].mean()), "top1": float((rank[layer] == 0).float().mean()),
                     "text": text})
    return CTCLensResult(pd.DataFrame(rows))
