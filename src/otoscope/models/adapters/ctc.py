"""wav2vec2, HuBERT and WavLM: a CNN on the waveform, a transformer encoder, and maybe a CTC head.

The only file that knows how transformers lays these out: post-norm encoders (the base models) and
pre-norm ones (``do_stable_layer_norm``, the "large" models), with or without ``lm_head``.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import torch
from torch import nn

from otoscope.audio.frames import FrameGeometry, cnn_geometry
from otoscope.errors import OtoscopeError
from otoscope.hooks.points import HookPoint, Site, _attn_points, _base, _mlp_points
from otoscope.models.adapters.base import Adapter
from otoscope.models.inputs import ModelInputs, waveform_features

if TYPE_CHECKING:
    from otoscope.audio.io import Clip

PREFIXES = ("Wav2Vec2", "Hubert", "WavLM")  # transformers class-name prefixes of the family


def wav2vec2_family_points(model: nn.Module) -> list[HookPoint]:
    """Hook points of wav2vec2, HuBERT and WavLM (base models and CTC / classification heads)."""
    base = _base(model)
    enc = base.encoder
    stable = "StableLayerNorm" in type(enc).__name__
    # WavLM runs torch's fused multi_head_attention_forward: its q/k/v/out projections never run as modules.
    with_qkv = "WavLM" not in type(enc.layers[0].attention).__name__
    points = [
        HookPoint("encoder.hook_features", base.feature_extractor, Site.OUTPUT, "[batch, frames, d_conv]",
                  "CNN feature-extractor output", channels_first=True),
        HookPoint("encoder.hook_embed", enc.layers[0], Site.INPUT, "[batch, frames, d_model]",
                  "projected features plus convolutional positions: the input to block 0"
                  + ("" if stable else " (after the encoder's input layer norm)")),
    ]
    for i, layer in enumerate(enc.layers):
        p = f"encoder.blocks.{i}"
        attn = layer.attention
        points += [
            HookPoint(f"{p}.hook_resid_pre", layer, Site.INPUT, "[batch, frames, d_model]", "residual stream into the block"),
            HookPoint(f"{p}.hook_attn_out", attn, Site.OUTPUT, "[batch, frames, d_model]", "self-attention output"),
        ]
        if stable:
            points.append(HookPoint(f"{p}.hook_resid_mid", attn, Site.RESID_SUM, "[batch, frames, d_model]",
                                    "residual stream after attention, before the MLP", residual_module=layer.layer_norm))
        else:
            points.append(HookPoint(f"{p}.hook_resid_mid", layer.layer_norm, Site.OUTPUT, "[batch, frames, d_model]",
                                    "residual stream after attention and its post-layer-norm, before the MLP"))
        points += [
            HookPoint(f"{p}.hook_mlp_out", layer.feed_forward, Site.OUTPUT, "[batch, frames, d_model]", "MLP output"),
            HookPoint(f"{p}.hook_resid_post", layer, Site.OUTPUT, "[batch, frames, d_model]",
                      "residual stream out of the block" + ("" if stable else " (after the final post-layer-norm)")),
        ]
        points += _mlp_points(p, layer.feed_forward.intermediate_dense, layer.feed_forward.output_dense, "frames")
        points += _attn_points(f"{p}.attn", attn, attn.num_heads, "frames", "frames", with_qkv)
    if stable:
        points.append(HookPoint("encoder.hook_ln_final", enc.layer_norm, Site.OUTPUT, "[batch, frames, d_model]",
                                "encoder output after its final layer norm"))
    head = getattr(model, "lm_head", None)
    if head is not None:
        points.append(HookPoint("encoder.hook_logits", head, Site.OUTPUT, "[batch, frames, vocab]", "CTC logits"))
    return points


class CTCAdapter(Adapter):
    """wav2vec2 / HuBERT / WavLM encoders, bare or with a CTC head (``*ForCTC``)."""

    family = "ctc"
    supports = "wav2vec2, HuBERT, WavLM"
    sides = ("encoder",)
    input_kind = "waveform"
    decoding = "ctc"

    @classmethod
    def matches(cls, hf_model: nn.Module) -> bool:
        name = type(hf_model).__name__
        return name.startswith(PREFIXES) and not name.startswith("Wav2Vec2Conformer")

    def hook_points(self) -> list[HookPoint]:
        return wav2vec2_family_points(self.model)

    @cached_property
    def geometry(self) -> FrameGeometry:
        config = self.model.config
        return cnn_geometry(config.conv_kernel, config.conv_stride, self.feature_extractor.sampling_rate)

    @property
    def has_ctc_head(self) -> bool:
        return getattr(self.model, "lm_head", None) is not None

    @property
    def can_transcribe(self) -> bool:
        """A CTC head and a tokenizer to spell its output."""
        return self.has_ctc_head and self.tokenizer is not None

    @property
    def lens_kinds(self) -> frozenset[str]:
        return frozenset({"ctc"}) if self.can_transcribe else frozenset()

    def prepare(self, clips: list["Clip"], text=None, *, tokens=None, prompt=None,
                language: str | None = "en") -> ModelInputs:
        """Normalised, right-padded waveforms ``[batch, samples]``, their mask, and the real-frame mask."""
        if text is not None or tokens is not None or prompt is not None:
            raise OtoscopeError(f"{self.name} is encoder-only: it takes no text, tokens or prompt.")
        values, attention = waveform_features(self.feature_extractor, clips, self.geometry)
        total = self.geometry.n_frames(values.shape[-1])
        mask = self.geometry.frame_mask([len(c.samples) for c in clips], total)
        return ModelInputs(clips, values, mask, attention)

    def forward(self, inputs: ModelInputs) -> torch.Tensor:
        """CTC logits ``[batch, frames, vocab]``, or the last hidden state ``[batch, frames, d_model]`` of a bare encoder."""
        param = next(self.model.parameters())
        mask = None if inputs.attention_mask is None else inputs.attention_mask.to(param.device)
        out = self.model(input_values=inputs.features.to(param.device, param.dtype), attention_mask=mask)
        return out.logits if hasattr(out, "logits") else out.last_hidden_state

    # ------------------------------------------------------------------ readout
    def final_norm(self, side: str) -> nn.Module | None:
        """The pre-norm ("stable layer norm") encoder's final norm; None for post-norm encoders, whose
        blocks end normed already."""
        enc = _base(self.model).encoder
        stable = "StableLayerNorm" in type(enc).__name__
        return enc.layer_norm if side == "encoder" and stable else None

    def unembedding(self, side: str) -> torch.Tensor | None:
        """The CTC head's ``[vocab, d_model]`` weight (it also has a bias: see :meth:`readout`)."""
        return self.model.lm_head.weight if side == "encoder" and self.has_ctc_head else None

    def readout(self, side: str):
        if side != "encoder" or not self.has_ctc_head:
            return None
        norm, head = self.final_norm(side), self.model.lm_head
        return (lambda resid: head(norm(resid))) if norm is not None else head
