"""MusicGen (``MusicgenForConditionalGeneration``): a T5 text encoder, a decoder that writes EnCodec codes.

Hook names:

- ``text_encoder.hook_embed``, ``text_encoder.blocks.{L}.hook_resid_pre|mid|post``, ``…hook_attn_out``,
  ``…hook_mlp_out``, ``…attn.hook_q|k|v|z``, ``…mlp.hook_post``, ``text_encoder.hook_ln_final``: the prompt,
  ``[batch, tokens, d_text]``; ``text_encoder.hook_proj`` when the checkpoint projects the text encoding to
  the decoder's width (musicgen-small: 768 → 1024).
- ``decoder.hook_embed``, ``decoder.blocks.{L}.hook_resid_pre|mid|mid_cross|post``, ``…hook_attn_out``,
  ``…hook_cross_attn_out``, ``…hook_mlp_out``, ``…attn.*``, ``…cross_attn.*`` (to the text encoding),
  ``…mlp.hook_pre|post``, ``decoder.hook_ln_final``: ``[batch, frames, d_model]``, one position per codec frame;
  ``decoder.hook_logits``: every codebook's logits ``[batch × codebooks, frames, vocab]`` (row
  ``b * codebooks + k`` is codebook ``k`` of prompt ``b``, HF's layout).

The codebook delay pattern. EnCodec gives ``K`` codes per frame; MusicGen's decoder reads them staggered:
codebook ``k`` runs ``k`` positions late, and position 0 holds the start (pad) token in every codebook.
So decoder position ``t`` reads codebook ``k``'s code of frame ``t - 1 - k`` and its logits for codebook
``k`` predict frame ``t - k``. :func:`delay_codes` turns frame-aligned codes (what EnCodec's encoder gives)
into that layout and :func:`undelay_codes` back. Teacher forcing takes ``audio_codes`` exactly as HF's
``decoder_input_ids``: already in the delayed layout, ``[batch × codebooks, positions]``. Position ``t``
sits at ``t / frame_rate`` seconds (codebook 0's frame), which is what the cache's geometry converts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from otoscope.audio.frames import FrameGeometry
from otoscope.errors import OtoscopeError
from otoscope.hooks.points import HookPoint, Site, _attn_points, _mlp_points
from otoscope.models.adapters.base import Adapter
from otoscope.models.inputs import ModelInputs


def delay_codes(codes: torch.Tensor, codebooks: int, pad_id: int) -> torch.Tensor:
    """Frame-aligned codes ``[batch × codebooks, frames]`` → the decoder's delayed layout
    ``[batch × codebooks, frames + codebooks]``: a start column of ``pad_id``, codebook ``k`` shifted ``k`` late,
    ``pad_id`` where a codebook has no code yet (or any more)."""
    rows, frames = codes.shape
    if rows % codebooks:
        raise OtoscopeError(f"codes have {rows} rows, not a multiple of the model's {codebooks} codebooks; "
                            "pass [batch × codebooks, frames].")
    out = torch.full((rows, frames + codebooks), pad_id, dtype=torch.long, device=codes.device)
    for k in range(codebooks):
        out[k::codebooks, 1 + k: 1 + k + frames] = codes[k::codebooks]
    return out


def undelay_codes(delayed: torch.Tensor, codebooks: int) -> torch.Tensor:
    """Inverse of :func:`delay_codes`: ``[batch × codebooks, positions]`` → frame-aligned
    ``[batch × codebooks, positions - codebooks]``."""
    rows, positions = delayed.shape
    frames = positions - codebooks
    if frames < 1:
        raise OtoscopeError(f"{positions} delayed positions hold no complete frame of {codebooks} codebooks.")
    out = torch.empty((rows, frames), dtype=torch.long, device=delayed.device)
    for k in range(codebooks):
        out[k::codebooks] = delayed[k::codebooks, 1 + k: 1 + k + frames]
    return out


@dataclass
class GeneratedAudio:
    """What :meth:`MusicgenAdapter.generate` returns."""

    samples: np.ndarray
    """Mono waveform ``[samples]`` (float32) at ``sample_rate``."""
    sample_rate: int
    """Samples per second (32000 for the released checkpoints)."""
    codes: torch.Tensor
    """Frame-aligned EnCodec codes ``[codebooks, frames]``."""
    prompt: str | None
    """The text prompt (None when given as ids)."""
    seed: int
    """The sampling seed."""

    @property
    def seconds(self) -> float:
        """Duration of the waveform."""
        return len(self.samples) / self.sample_rate


def _t5_points(encoder: nn.Module) -> list[HookPoint]:
    """Hook points of a T5 encoder stack (MusicGen's text encoder)."""
    stack = getattr(encoder, "encoder", encoder)
    shape = "[batch, tokens, d_text]"
    points = [HookPoint("text_encoder.hook_embed", stack.block[0], Site.INPUT, shape,
                        "prompt token embeddings: the input to block 0")]
    for i, block in enumerate(stack.block):
        p = f"text_encoder.blocks.{i}"
        sa, ff = block.layer[0], block.layer[-1]
        attn, mlp = sa.SelfAttention, ff.DenseReluDense
        heads = attn.n_heads
        points += [
            HookPoint(f"{p}.hook_resid_pre", block, Site.INPUT, shape, "residual stream into the block"),
            HookPoint(f"{p}.hook_attn_out", attn, Site.OUTPUT, shape, "self-attention output (before dropout and the add)"),
            HookPoint(f"{p}.hook_resid_mid", sa, Site.OUTPUT, shape, "residual after self-attention, before the MLP"),
            HookPoint(f"{p}.hook_mlp_out", mlp, Site.OUTPUT, shape, "MLP output added to the residual"),
            HookPoint(f"{p}.hook_resid_post", block, Site.OUTPUT, shape, "residual stream out of the block"),
            HookPoint(f"{p}.mlp.hook_post", mlp.wo, Site.INPUT, "[batch, tokens, d_mlp]",
                      "MLP neuron activations (after the non-linearity)"),
        ]
        for key, proj, doc in (("q", attn.q, "queries per head (T5 does not scale them)"), ("k", attn.k, "keys per head"),
                               ("v", attn.v, "values per head")):
            points.append(HookPoint(f"{p}.attn.hook_{key}", proj, Site.OUTPUT, "[batch, tokens, heads, d_head]", doc,
                                    heads=heads))
        points.append(HookPoint(f"{p}.attn.hook_z", attn.o, Site.INPUT, "[batch, tokens, heads, d_head]",
                                "per-head attention output, before the output projection", heads=heads))
    points.append(HookPoint("text_encoder.hook_ln_final", stack.final_layer_norm, Site.OUTPUT, shape,
                            "text encoding after the final layer norm (what the decoder attends to)"))
    return points


def _decoder_block(i: int, layer: nn.Module) -> list[HookPoint]:
    p, shape = f"decoder.blocks.{i}", "[batch, frames, d_model]"
    return [
        HookPoint(f"{p}.hook_resid_pre", layer, Site.INPUT, shape, "residual stream into the block"),
        HookPoint(f"{p}.hook_attn_out", layer.self_attn, Site.OUTPUT, shape, "causal self-attention output (the music so far)"),
        HookPoint(f"{p}.hook_resid_mid", layer.self_attn, Site.RESID_SUM, shape,
                  "residual after self-attention, before cross-attention", residual_module=layer.self_attn_layer_norm),
        HookPoint(f"{p}.hook_cross_attn_out", layer.encoder_attn, Site.OUTPUT, shape, "cross-attention output (the prompt pathway)"),
        HookPoint(f"{p}.hook_resid_mid_cross", layer.encoder_attn, Site.RESID_SUM, shape,
                  "residual after cross-attention, before the MLP", residual_module=layer.encoder_attn_layer_norm),
        HookPoint(f"{p}.hook_mlp_out", layer.fc2, Site.OUTPUT, shape, "MLP output added to the residual"),
        HookPoint(f"{p}.hook_resid_post", layer, Site.OUTPUT, shape, "residual stream out of the block"),
        *_mlp_points(p, layer.fc1, layer.fc2, "frames"),
        *_attn_points(f"{p}.attn", layer.self_attn, layer.self_attn.num_heads, "frames", "frames", True),
        *_attn_points(f"{p}.cross_attn", layer.encoder_attn, layer.encoder_attn.num_heads, "frames", "tokens", True),
    ]


class MusicgenAdapter(Adapter):
    """MusicGen: prompt in, EnCodec codes out. No audio input: ``prepare`` takes text (or ids) and codes."""

    family = "musicgen"
    supports = "MusicgenForConditionalGeneration (MusicGen)"
    sides = ("text_encoder", "decoder")
    input_kind = "tokens"
    extra_inputs = ("input_ids", "audio_codes")

    @classmethod
    def matches(cls, hf_model: nn.Module) -> bool:
        return type(hf_model).__name__ == "MusicgenForConditionalGeneration"

    # ------------------------------------------------------------------ structure
    @property
    def codebooks(self) -> int:
        """EnCodec codebooks per frame (4 for the released mono checkpoints)."""
        return int(self.model.decoder.num_codebooks)

    @property
    def pad_id(self) -> int:
        """The decoder's pad / start token (= the code vocabulary size)."""
        return int(self.model.config.decoder.pad_token_id)

    @property
    def geometry(self) -> FrameGeometry:
        audio = self.model.config.audio_encoder
        hop = int(np.prod(audio.upsampling_ratios))  # waveform samples per codec frame (640 at 32 kHz → 50 frames/s)
        return FrameGeometry(sample_rate=int(audio.sampling_rate), samples_per_frame=hop)

    def hook_points(self) -> list[HookPoint]:
        model = self.model
        dec = model.decoder.model.decoder
        points = _t5_points(model.text_encoder)
        if hasattr(model, "enc_to_dec_proj"):
            points.append(HookPoint("text_encoder.hook_proj", model.enc_to_dec_proj, Site.OUTPUT, "[batch, tokens, d_model]",
                                    "text encoding projected to the decoder's width"))
        points.append(HookPoint("decoder.hook_embed", dec.layers[0], Site.INPUT, "[batch, frames, d_model]",
                                "sum of the codebooks' code embeddings plus sinusoidal positions: the input to block 0"))
        for i, layer in enumerate(dec.layers):
            points += _decoder_block(i, layer)
        points.append(HookPoint("decoder.hook_ln_final", dec.layer_norm, Site.OUTPUT, "[batch, frames, d_model]",
                                "decoder output after its final layer norm"))
        points.append(HookPoint("decoder.hook_logits", model.decoder, Site.OUTPUT, "[batch × codebooks, frames, vocab]",
                                "next-code logits of every codebook (row b * codebooks + k)"))
        return points

    def final_norm(self, side: str) -> nn.Module | None:
        if side == "decoder":
            return self.model.decoder.model.decoder.layer_norm
        if side == "text_encoder":
            return self.model.text_encoder.encoder.final_layer_norm
        return None

    def codebook_unembedding(self, codebook: int) -> torch.Tensor:
        """The ``[vocab, d_model]`` head of one codebook (the decoder has one per codebook)."""
        return self.model.decoder.lm_heads[codebook].weight

    # ------------------------------------------------------------------ inputs and forward
    def example_inputs(self) -> dict:
        """A short prompt (as ids: works without a tokenizer) and three frames of codes."""
        k = self.codebooks
        return {"input_ids": [[1, 2, 3, 4]], "audio_codes": delay_codes(torch.zeros((k, 3), dtype=torch.long), k,
                                                                          self.pad_id)}

    def text_ids(self, text, tokens=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt ids and mask ``[batch, tokens]`` from text (needs the tokenizer) or ids."""
        if (text is None) == (tokens is None):
            raise OtoscopeError("MusicGen needs a prompt: pass text=PROMPT (or input_ids=IDS), exactly one of them.")
        if tokens is not None:
            ids = torch.as_tensor(tokens, dtype=torch.long)
            ids = ids[None] if ids.ndim == 1 else ids
            return ids, torch.ones_like(ids, dtype=torch.long)
        if self.tokenizer is None:
            raise OtoscopeError("this MusicGen has no tokenizer; pass input_ids=IDS (T5 token ids) instead of text.")
        texts = [text] if isinstance(text, str) else list(text)
        enc = self.tokenizer(texts, padding=True, return_tensors="pt")
        return enc.input_ids, enc.attention_mask

    def prepare(self, clips, text=None, *, tokens=None, prompt=None, language=None, input_ids=None,
                audio_codes=None) -> ModelInputs:
        """Prompt (``text`` or ``input_ids``/``tokens``) and teacher-forced ``audio_codes`` in the delayed layout
        ``[batch × codebooks, positions]`` (default: the start position only)."""
        if clips:
            raise OtoscopeError("MusicGen takes a text prompt, not audio; pass text=PROMPT (and audio_codes=CODES, "
                                "e.g. from model.adapter.encode_audio) instead.")
        if prompt is not None:
            raise OtoscopeError("MusicGen has no previous-text prompt; pass the prompt as text=PROMPT.")
        if tokens is not None and input_ids is not None:
            raise OtoscopeError("pass input_ids or tokens, not both.")
        ids, mask = self.text_ids(text, input_ids if input_ids is not None else tokens)
        batch, k = ids.shape[0], self.codebooks
        if audio_codes is None:
            codes = torch.full((batch * k, 1), self.pad_id, dtype=torch.long)
        else:
            codes = torch.as_tensor(audio_codes, dtype=torch.long)
            if codes.ndim != 2 or codes.shape[0] != batch * k:
                raise OtoscopeError(f"audio_codes must be [batch × codebooks, positions] = [{batch * k}, N] for {batch} "
                                    f"prompt(s) and {k} codebooks; got {list(codes.shape)}.")
            limit = self.model.config.decoder.max_position_embeddings
            if codes.shape[1] > limit:
                raise OtoscopeError(f"audio_codes have {codes.shape[1]} positions; this decoder takes at most {limit}.")
            if int(codes.max()) > self.pad_id or int(codes.min()) < 0:
                raise OtoscopeError(f"audio_codes must lie in 0..{self.pad_id} (codes and the pad/start token).")
        frames = codes.shape[1]
        frame_mask = torch.ones((batch, frames), dtype=torch.bool)
        # decoder positions are codec frames, all real (one length per batch): frame_mask covers them and the
        # text mask covers the prompt; token_mask stays None, so no decoder position is dropped as padding
        return ModelInputs([], ids, frame_mask, attention_mask=mask, decoder_input_ids=codes, text_mask=mask.bool())

    def forward(self, inputs: ModelInputs) -> torch.Tensor:
        """Logits of every codebook ``[batch × codebooks, frames, vocab]``."""
        device = next(self.model.parameters()).device
        out = self.model(input_ids=inputs.features.to(device), attention_mask=inputs.attention_mask.to(device),
                         decoder_input_ids=inputs.decoder_input_ids.to(device), use_cache=False)
        return out.logits

    def split_codebooks(self, logits: torch.Tensor) -> torch.Tensor:
        """``[batch × codebooks, frames, vocab]`` → ``[batch, codebooks, frames, vocab]``."""
        return logits.unflatten(0, (-1, self.codebooks))

    # ------------------------------------------------------------------ audio
    @torch.no_grad()
    def encode_audio(self, samples: np.ndarray) -> torch.Tensor:
        """Frame-aligned EnCodec codes ``[codebooks, frames]`` of a mono waveform at the model's rate."""
        device = next(self.model.parameters()).device
        values = torch.as_tensor(np.asarray(samples, dtype=np.float32), device=device)[None, None]  # [1, 1, samples]
        out = self.model.audio_encoder.encode(values, bandwidth=max(self.model.config.audio_encoder.target_bandwidths))
        codes = out.audio_codes  # [chunks=1, batch=1, codebooks, frames]
        return codes[0, 0, : self.codebooks].cpu()

    @torch.no_grad()
    def generate_audio(self, text=None, *, seconds: float = 5.0, seed: int = 0, input_ids=None, guidance_scale: float = 3.0,
                 temperature: float = 1.0, top_k: int = 250) -> GeneratedAudio:
        """Sample ``seconds`` of audio for one prompt with a fixed seed (HF ``generate``; the seed is set on a
        forked RNG, so the caller's random state is untouched)."""
        if not (math.isfinite(seconds) and seconds > 0):
            raise OtoscopeError(f"seconds must be a positive number, got {seconds}.")
        ids, mask = self.text_ids(text, input_ids)
        if ids.shape[0] != 1:
            raise OtoscopeError("generate takes one prompt; loop over prompts for several.")
        frames = math.ceil(seconds * self.geometry.frame_rate)
        device = next(self.model.parameters()).device
        codec, seen = self.model.audio_encoder, {}
        decode = codec.decode

        def record(audio_codes, *args, **kwargs):  # HF generate decodes the codes and drops them: keep a copy
            seen["codes"] = audio_codes[0, 0].cpu()  # [chunks=1, batch=1, codebooks, frames] → [codebooks, frames]
            return decode(audio_codes, *args, **kwargs)

        codec.decode = record  # an instance attribute, deleted below: the class's method is untouched
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                out = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=True,
                                          guidance_scale=guidance_scale, temperature=temperature, top_k=top_k,
                                          max_new_tokens=frames + self.codebooks - 1)
        finally:
            del codec.decode
        samples = out[0, 0].float().cpu().numpy()  # [batch, channels, samples] → mono samples
        return GeneratedAudio(samples, self.geometry.sample_rate, seen["codes"], text if isinstance(text, str) else None,
                              seed)
