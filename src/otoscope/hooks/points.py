"""Canonical hook names mapped to each architecture's Hugging Face modules.

This is the only file that knows how transformers lays out Whisper, wav2vec2, HuBERT and WavLM.
A :class:`HookPoint` says which module to hook and how to read the value there; :mod:`otoscope.hooks.manager`
does the hooking. Names follow TransformerLens: ``encoder.blocks.{L}.hook_resid_post`` and so on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from torch import nn


class Site(Enum):
    """How a hook point's value is found on its module."""

    OUTPUT = "output"
    """The module's output (first element when it returns a tuple)."""
    INPUT = "input"
    """The module's first input (positional or ``hidden_states=``)."""
    RESID_SUM = "resid_sum"
    """``residual + output``: the residual stream right after a branch adds into it. The residual is the
    input of ``residual_module``; a replacement ``x`` is written back as the branch output ``x - residual``."""
    PATTERN = "pattern"
    """Attention probabilities ``[batch, heads, query, key]``, read inside the attention kernel."""


@dataclass(frozen=True)
class HookPoint:
    """One named place in the model where activations can be read and replaced."""

    name: str
    """Canonical name, e.g. ``encoder.blocks.0.hook_resid_post``."""
    module: nn.Module
    """The module the torch hook is attached to."""
    site: Site
    """Which value on that module this hook point is."""
    shape: str
    """Documented shape, e.g. ``[batch, frames, d_model]``."""
    doc: str
    """What the activation is, in one line."""
    heads: int | None = None
    """Split the last axis into ``[heads, d_head]`` (q, k, v, z hooks)."""
    channels_first: bool = False
    """The module emits ``[batch, channels, frames]``; hooks see ``[batch, frames, channels]``."""
    residual_module: nn.Module | None = None
    """For ``RESID_SUM``: the module whose input is the residual stream before the branch."""
    rows: int | None = None
    """The module sees items flattened to ``[batch * rows, ...]`` (Voxtral's projector); hooks see
    ``[batch, rows, ...]``."""

    @property
    def side(self) -> str:
        """``encoder`` or ``decoder``."""
        return self.name.split(".", 1)[0]


def _base(model: nn.Module) -> nn.Module:
    prefix = getattr(model, "base_model_prefix", "")
    return getattr(model, prefix, model) if prefix else model


def _attn_points(prefix: str, attn: nn.Module, heads: int, q_len: str, kv_len: str, with_qkv: bool) -> list[HookPoint]:
    points = []
    if with_qkv:
        for key, proj, length, doc in (("q", "q_proj", q_len, "queries per head (before the 1/sqrt(d_head) scaling)"),
                                       ("k", "k_proj", kv_len, "keys per head"), ("v", "v_proj", kv_len, "values per head")):
            points.append(HookPoint(f"{prefix}.hook_{key}", getattr(attn, proj), Site.OUTPUT,
                                    f"[batch, {length}, heads, d_head]", doc, heads=heads))
        points.append(HookPoint(f"{prefix}.hook_z", attn.out_proj, Site.INPUT, f"[batch, {q_len}, heads, d_head]",
                                "per-head attention output, before the output projection", heads=heads))
        points.append(HookPoint(f"{prefix}.hook_pattern", attn, Site.PATTERN, f"[batch, heads, {q_len}, {kv_len}]",
                                "attention probabilities (on request: runs eager attention)"))
    return points


def _mlp_points(prefix: str, fc_in: nn.Module, fc_out: nn.Module, length: str) -> list[HookPoint]:
    return [
        HookPoint(f"{prefix}.mlp.hook_pre", fc_in, Site.OUTPUT, f"[batch, {length}, d_mlp]", "MLP pre-activations"),
        HookPoint(f"{prefix}.mlp.hook_post", fc_out, Site.INPUT, f"[batch, {length}, d_mlp]",
                  "MLP neuron activations (after the non-linearity)"),
    ]


def _whisper_block(side: str, i: int, layer: nn.Module) -> list[HookPoint]:
    """Hook points of one Whisper encoder or decoder layer (the decoder adds cross-attention)."""
    p, length = f"{side}.blocks.{i}", ("frames" if side == "encoder" else "tokens")
    shape = f"[batch, {length}, d_model]"
    decoder = side == "decoder"
    points = [
        HookPoint(f"{p}.hook_resid_pre", layer, Site.INPUT, shape, "residual stream into the block"),
        HookPoint(f"{p}.hook_attn_out", layer.self_attn, Site.OUTPUT, shape,
                  "causal self-attention output (the text pathway)" if decoder else "self-attention output added to the residual"),
        HookPoint(f"{p}.hook_resid_mid", layer.self_attn, Site.RESID_SUM, shape,
                  "residual after self-attention, before cross-attention" if decoder
                  else "residual stream after attention, before the MLP", residual_module=layer.self_attn_layer_norm),
    ]
    if decoder:
        points += [
            HookPoint(f"{p}.hook_cross_attn_out", layer.encoder_attn, Site.OUTPUT, shape, "cross-attention output (the audio pathway)"),
            HookPoint(f"{p}.hook_resid_mid_cross", layer.encoder_attn, Site.RESID_SUM, shape,
                      "residual after cross-attention, before the MLP", residual_module=layer.encoder_attn_layer_norm),
        ]
    points += [
        HookPoint(f"{p}.hook_mlp_out", layer.fc2, Site.OUTPUT, shape, "MLP output added to the residual"),
        HookPoint(f"{p}.hook_resid_post", layer, Site.OUTPUT, shape, "residual stream out of the block (not layer-normed)"),
    ]
    points += _mlp_points(p, layer.fc1, layer.fc2, length)
    points += _attn_points(f"{p}.attn", layer.self_attn, layer.self_attn.num_heads, length, length, True)
    if decoder:
        points += _attn_points(f"{p}.cross_attn", layer.encoder_attn, layer.encoder_attn.num_heads, "tokens", "frames", True)
    return points


def whisper_points(model: nn.Module) -> list[HookPoint]:
    """Hook points of a transformers Whisper model (``WhisperForConditionalGeneration`` or ``WhisperModel``)."""
    base = _base(model)
    enc, dec = base.encoder, base.decoder
    points = [HookPoint("encoder.hook_embed", enc.layers[0], Site.INPUT, "[batch, frames, d_model]",
                        "conv stem output plus sinusoidal positions: the input to block 0")]
    for i, layer in enumerate(enc.layers):
        points += _whisper_block("encoder", i, layer)
    points.append(HookPoint("encoder.hook_ln_final", enc.layer_norm, Site.OUTPUT, "[batch, frames, d_model]",
                            "encoder output after its final layer norm (what the decoder attends to)"))
    points.append(HookPoint("decoder.hook_embed", dec.layers[0], Site.INPUT, "[batch, tokens, d_model]",
                            "token plus position embeddings: the input to block 0"))
    for i, layer in enumerate(dec.layers):
        points += _whisper_block("decoder", i, layer)
    points.append(HookPoint("decoder.hook_ln_final", dec.layer_norm, Site.OUTPUT, "[batch, tokens, d_model]",
                            "decoder output after its final layer norm"))
    if hasattr(model, "proj_out"):
        points.append(HookPoint("decoder.hook_logits", model.proj_out, Site.OUTPUT, "[batch, tokens, vocab]",
                                "next-token logits"))
    return points


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


def build_hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """All hook points of ``model``, by canonical name. Unsupported classes raise NotImplementedError."""
    cls = type(model).__name__
    if cls.startswith("Whisper") and hasattr(_base(model), "decoder"):
        points = whisper_points(model)
    elif cls.startswith(("Wav2Vec2", "Hubert", "WavLM")) and not cls.startswith("Wav2Vec2Conformer"):
        points = wav2vec2_family_points(model)
    else:
        raise NotImplementedError(
            f"otoscope has no hook map for {cls}; supported: Whisper (encoder-decoder), wav2vec2, HuBERT, WavLM."
        )
    return {p.name: p for p in points}
