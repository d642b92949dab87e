"""Whisper encoder lenses, all layers from one encoder forward.

* Encoder logit lens: layer L's residual (``hook_resid_post``) → the encoder's final layer norm →
  the decoder's token-embedding matrix → a vocabulary distribution per frame. Per layer, over real
  frames: LIS (mean cosine similarity between the layer's softmax and the final layer's), mean entropy
  (nats) and mean KL(final ‖ layer) (nats). LIS is compressed near 1 on small models, hence the others.
* Encoder lens (Glazer et al. 2025, "Beyond Transcription"): the same normed residual is handed to
  the decoder as if it were the encoder output, and decoded greedily → a transcript per layer, its WER
  against the full model's transcript, and the saturation layer (first layer from which every deeper
  layer's transcript matches).

Cost: one encoder forward with all residuals cached, then one batched greedy decode over all layers —
never one full forward per layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch

from otoscope.errors import OtoscopeError

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel


@dataclass
class LayerLens:
    """Lens figures for one encoder block."""

    layer: int
    """Block index (its ``hook_resid_post``)."""
    lis: float
    """Layer Information Score: mean cosine(softmax_layer, softmax_final) over real frames."""
    entropy: float
    """Mean entropy of the layer's vocabulary distribution over real frames, in nats."""
    kl_to_final: float
    """Mean KL(final ‖ layer) over real frames, in nats."""
    encoder_lens_text: str = ""
    """Greedy transcript decoded from this layer's normed residual."""
    encoder_lens_wer: float = float("nan")
    """WER of that transcript against the full model's transcript."""


@dataclass
class EncoderLensResult:
    """All layers' lenses for one clip."""

    model: str
    """Model name."""
    path: str
    """The clip."""
    transcript: str
    """The full model's greedy transcript."""
    saturation_layer: int | None
    """First layer from which every deeper layer's encoder-lens transcript matches the full one (None: never)."""
    layers: list[LayerLens] = field(default_factory=list)
    """One entry per encoder block, in order."""
    top_tokens: dict[int, list[list[str]]] = field(default_factory=dict)
    """For requested layers: the top tokens of each real frame."""
    frame_seconds: list[float] = field(default_factory=list)
    """Start time of each real frame, seconds."""
    residuals: object | None = None
    """``[1 + layers, real frames, d_model]`` float32 on CPU: ``encoder.hook_embed`` then every block's
    ``hook_resid_post`` (what :func:`otoscope.geometry.collect.collect_layers` gives for this clip)."""
    encoder_out: object | None = None
    """``[1, frames, d_model]``: the encoder's output (last block after its final layer norm), all frames."""
    transcription: object | None = None
    """The full model's greedy :class:`~otoscope.models.decode.Transcription` (tokens included) when decoded:
    the last layer's normed residual is the encoder output, so its decode is the model's own transcript."""

    def to_json(self) -> dict:
        """The ``lens.json`` structure."""
        out = {"model": self.model, "path": self.path, "transcript": self.transcript,
               "saturation_layer": self.saturation_layer, "layers": [asdict(layer) for layer in self.layers]}
        if self.top_tokens:
            out["top_tokens"] = {str(k): v for k, v in self.top_tokens.items()}
        return out

    def to_frame(self):
        """Per-layer table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame([asdict(layer) for layer in self.layers])


def _normalise(text: str) -> str:
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    return BasicTextNormalizer()(text).strip()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER after Whisper's basic text normalisation; 0 when both are empty, 1 when only the reference is."""
    ref, hyp = _normalise(reference), _normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    import jiwer

    return float(jiwer.wer(ref, hyp))


def logit_lens_stats(model: HookedAudioModel, residuals: torch.Tensor, chunk: int = 32) -> tuple[list[float], list[float], list[float]]:
    """LIS, mean entropy and mean KL(final ‖ layer) per layer for ``residuals`` ``[layers, frames, d_model]``.

    The last layer is the reference. Frames are processed in chunks so memory stays at
    ``layers × chunk × vocab`` floats. Small chunks are also faster: blocks of tens of MB are reused by the
    allocator, while blocks of hundreds of MB are fresh pages each time (2.5 s → 1.0 s for a 5 s clip on tiny.en).
    """
    readout = model.adapter.readout("encoder")  # final layer norm, then the [vocab, d_model] unembedding
    n_layers, n_frames, _ = residuals.shape
    lis = torch.zeros(n_layers, dtype=torch.float64)
    ent = torch.zeros(n_layers, dtype=torch.float64)
    kl = torch.zeros(n_layers, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, n_frames, chunk):
            logits = readout(residuals[:, start : start + chunk])  # [layers, chunk, vocab]
            logp = torch.log_softmax(logits.float(), dim=-1)
            p = logp.exp()
            final_p, final_logp = p[-1:], logp[-1:]
            # cosine similarity written out: torch's cosine_similarity is several times slower at vocab width
            cos = (p * final_p).sum(-1) / (p.norm(dim=-1) * final_p.norm(dim=-1)).clamp_min(1e-12)
            lis += cos.sum(-1).double()
            ent += (-(p * logp).sum(-1)).sum(-1).double()
            kl += (final_p * (final_logp - logp)).sum(-1).clamp_min(0).sum(-1).double()
    return (lis / n_frames).tolist(), (ent / n_frames).tolist(), (kl / n_frames).tolist()


def top_tokens(model: HookedAudioModel, residual: torch.Tensor, k: int = 3) -> list[list[str]]:
    """Top-``k`` tokens of the encoder logit lens for each frame of ``residual`` ``[frames, d_model]``."""
    with torch.no_grad():
        ids = model.adapter.readout("encoder")(residual).topk(k, dim=-1).indices.tolist()
    return [[model.tokenizer.convert_ids_to_tokens(i) for i in row] for row in ids]


def encoder_lens(model: HookedAudioModel, audio, *, decode: bool = True, top_k_layers: tuple[int, ...] = (), top_k: int = 3,
                 max_new_tokens: int = 96) -> EncoderLensResult:
    """Encoder logit lens and (with ``decode``) encoder lens for one clip on a Whisper model."""
    from otoscope.models.decode import greedy_whisper

    if "encoder" not in model.adapter.lens_kinds:
        raise OtoscopeError(f"{model.name} has no decoder: the encoder logit lens and encoder lens need Whisper; "
                            "geometry (norms, CKA, probes) applies to encoder-only models.")
    inputs = model.prepare(audio)
    if len(inputs.clips) != 1:
        raise OtoscopeError("encoder_lens takes one clip; loop over clips for several.")
    grabbed: dict[str, torch.Tensor] = {}
    grab = lambda t, hook: grabbed.__setitem__(hook.name, t)  # noqa: E731
    hooks = [("encoder.hook_embed", grab), ("encoder.blocks.*.hook_resid_post", grab)]
    with torch.no_grad(), model.hooks(hooks):
        model.adapter.encode(inputs)  # the encoder alone, once
    n_real = int(inputs.frame_mask[0].sum())
    stack = torch.stack([grabbed[f"encoder.blocks.{i}.hook_resid_post"][0] for i in range(model.n_layers)])  # [layers, 1500, d_model]
    lis, ent, kl = logit_lens_stats(model, stack[:, :n_real])
    embed = grabbed["encoder.hook_embed"][0, :n_real]
    residuals = torch.cat([embed[None], stack[:, :n_real]]).float().cpu()  # [1 + layers, real frames, d_model]
    with torch.no_grad():
        normed = model.adapter.final_norm("encoder")(stack)  # [layers, 1500, d_model]: one "clip" per layer
    encoder_out = normed[-1:]  # [1, frames, d_model]: the last layer's normed residual is the encoder output
    layers = [LayerLens(i, lis[i], ent[i], kl[i]) for i in range(model.n_layers)]
    transcript = ""
    saturation = final = None
    if decode:
        rows = inputs.clips * model.n_layers
        with torch.no_grad():
            texts = greedy_whisper(model, rows, None, max_new_tokens, encoder_states=normed)
        final = texts[-1]  # decoded from the encoder output itself: the model's own transcript
        transcript = final.text
        for layer, text in zip(layers, texts):
            layer.encoder_lens_text = text.text
            layer.encoder_lens_wer = word_error_rate(transcript, text.text)
        matches = [_normalise(t.text) == _normalise(transcript) for t in texts]
        for i in range(len(matches)):
            if all(matches[i:]):
                saturation = i
                break
    tops = {i: top_tokens(model, stack[i, :n_real], top_k) for i in top_k_layers}
    return EncoderLensResult(model.name, inputs.clips[0].name, transcript, saturation, layers, tops,
                             [float(t) for t in model.geometry.frame_times(n_real)], residuals, encoder_out, final)
