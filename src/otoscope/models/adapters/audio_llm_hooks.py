"""The hook table of an audio-LLM: Whisper-style audio encoder → projector → decoder-only LLM.

Qwen2-Audio and Voxtral share the layout ``model.audio_tower`` (Whisper encoder layers),
``model.multi_modal_projector`` and ``model.language_model`` (Qwen2 / Llama decoder layers:
``input_layernorm → self_attn → + → post_attention_layernorm → mlp → +``), with ``lm_head`` on top.
Names follow the Whisper table under three prefixes: ``audio.encoder.*``, ``projector.*``, ``llm.*``.
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from otoscope.hooks.points import HookPoint, Site
from otoscope.models.adapters.whisper import _whisper_block

LLM_SHAPE = "[batch, tokens, d_llm]"


def _llm_block(i: int, layer: nn.Module, heads: int, kv_heads: int) -> list[HookPoint]:
    """Hook points of one Qwen2 / Llama decoder layer (pre-norm, gated MLP, grouped-query attention)."""
    p, attn, mlp = f"llm.blocks.{i}", layer.self_attn, layer.mlp
    return [
        HookPoint(f"{p}.hook_resid_pre", layer, Site.INPUT, LLM_SHAPE, "residual stream into the block"),
        HookPoint(f"{p}.hook_attn_out", attn, Site.OUTPUT, LLM_SHAPE, "self-attention output added to the residual"),
        HookPoint(f"{p}.hook_resid_mid", attn, Site.RESID_SUM, LLM_SHAPE, "residual after attention, before the MLP",
                  residual_module=layer.input_layernorm),
        HookPoint(f"{p}.hook_mlp_out", mlp, Site.OUTPUT, LLM_SHAPE, "MLP output added to the residual"),
        HookPoint(f"{p}.hook_resid_post", layer, Site.OUTPUT, LLM_SHAPE, "residual stream out of the block"),
        HookPoint(f"{p}.mlp.hook_pre", mlp.gate_proj, Site.OUTPUT, "[batch, tokens, d_mlp]",
                  "gate pre-activations of the gated MLP"),
        HookPoint(f"{p}.mlp.hook_post", mlp.down_proj, Site.INPUT, "[batch, tokens, d_mlp]",
                  "MLP neuron activations: act(gate) * up, the input of the down projection"),
        HookPoint(f"{p}.attn.hook_q", attn.q_proj, Site.OUTPUT, "[batch, tokens, heads, d_head]",
                  "queries per head (before rotary embedding and scaling)", heads=heads),
        HookPoint(f"{p}.attn.hook_k", attn.k_proj, Site.OUTPUT, "[batch, tokens, kv_heads, d_head]",
                  "keys per key-value head (grouped-query attention; before rotary embedding)", heads=kv_heads),
        HookPoint(f"{p}.attn.hook_v", attn.v_proj, Site.OUTPUT, "[batch, tokens, kv_heads, d_head]",
                  "values per key-value head (grouped-query attention)", heads=kv_heads),
        HookPoint(f"{p}.attn.hook_z", attn.o_proj, Site.INPUT, "[batch, tokens, heads, d_head]",
                  "per-head attention output, before the output projection", heads=heads),
        HookPoint(f"{p}.attn.hook_pattern", attn, Site.PATTERN, "[batch, heads, tokens, tokens]",
                  "attention probabilities (on request: runs eager attention)"),
    ]


def audio_llm_points(model: nn.Module, audio_tokens_per_window: int, stacked: bool) -> list[HookPoint]:
    """Hook points of a ``Qwen2AudioForConditionalGeneration`` or ``VoxtralForConditionalGeneration``.

    ``stacked``: the projector sees frames stacked into ``[batch * audio_tokens, k * d_audio]`` rows
    (Voxtral) rather than ``[batch, audio_tokens, d_audio]`` (Qwen2-Audio).
    """
    base = model.model
    enc, llm, proj = base.audio_tower, base.language_model, base.multi_modal_projector
    points = [HookPoint("audio.encoder.hook_embed", enc.layers[0], Site.INPUT, "[batch, frames, d_audio]",
                        "conv stem output plus positions: the input to audio block 0")]
    for i, layer in enumerate(enc.layers):
        points += [replace(p, name="audio." + p.name, shape=p.shape.replace("d_model", "d_audio"))
                   for p in _whisper_block("encoder", i, layer)]
    points.append(HookPoint("audio.encoder.hook_ln_final", enc.layer_norm, Site.OUTPUT,
                            "[batch, audio_tokens, d_audio]" if not stacked else "[batch, frames, d_audio]",
                            "audio encoder output after its final layer norm (Qwen2-Audio: after 2× pooling)"))
    points.append(HookPoint("projector.hook_out", proj, Site.OUTPUT, "[batch, audio_tokens, d_llm]",
                            "audio embeddings after the connector, every token of the 30 s window (those of "
                            "real audio enter the LLM)", rows=audio_tokens_per_window if stacked else None))
    points.append(HookPoint("llm.hook_embed", llm.layers[0], Site.INPUT, LLM_SHAPE,
                            "token embeddings with the audio embeddings merged in: the input to LLM block 0"))
    cfg = llm.config
    for i, layer in enumerate(llm.layers):
        points += _llm_block(i, layer, cfg.num_attention_heads, cfg.num_key_value_heads or cfg.num_attention_heads)
    points.append(HookPoint("llm.hook_ln_final", llm.norm, Site.OUTPUT, LLM_SHAPE,
                            "LLM output after its final RMS norm"))
    points.append(HookPoint("llm.hook_logits", model.lm_head, Site.OUTPUT, "[batch, tokens, vocab]", "next-token logits"))
    return points
