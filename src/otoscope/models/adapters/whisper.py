"""Whisper (``WhisperForConditionalGeneration`` / ``WhisperModel``): an audio encoder read by a text decoder.

The only file that knows how transformers lays out Whisper and how its decoder prompt is built:
``[<|startofprev|> prompt] <|startoftranscript|> [<|lang|> <|task|>] <|notimestamps|> text``.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

import torch
from torch import nn

from otoscope.audio.frames import FrameGeometry, whisper_geometry
from otoscope.errors import OtoscopeError
from otoscope.hooks.points import HookPoint, Site, _attn_points, _base, _mlp_points
from otoscope.models.adapters.base import Adapter
from otoscope.models.inputs import ModelInputs, pad_tokens, whisper_features

if TYPE_CHECKING:
    from otoscope.audio.io import Clip

MULTILINGUAL_VOCAB = 51865  # tokens in a multilingual Whisper vocabulary (the .en checkpoints have 51864)


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


class WhisperAdapter(Adapter):
    """Whisper encoder-decoder: a 30 s log-mel window, an encoder, a decoder prompted with task tokens."""

    family = "whisper"
    supports = "Whisper (encoder-decoder)"
    sides = ("encoder", "decoder")
    input_kind = "mel"
    decoding = "seq2seq"

    @classmethod
    def matches(cls, hf_model: nn.Module) -> bool:
        return type(hf_model).__name__.startswith("Whisper") and hasattr(_base(hf_model), "decoder")

    def hook_points(self) -> list[HookPoint]:
        return whisper_points(self.model)

    @cached_property
    def geometry(self) -> FrameGeometry:
        return whisper_geometry(self.model.config.max_source_positions)

    @contextmanager
    def encoder_window(self, frames: int):
        """Whisper with its encoder over the first ``frames`` frames of its 30 s window (whisper.cpp's ``audio_ctx``).

        The log-mel input is cut to ``2 · frames`` mel frames and the encoder's sinusoidal positions to their
        first ``frames``; no weight changes and nothing is re-implemented (the encoder checks its input length
        against ``config.max_source_positions``, which is set for the block and restored after). It is not quite
        Whisper's own computation: the encoder attends over fewer padding frames and the decoder over fewer
        outputs, so results under a window compare with each other, not with the full window's.
        """
        config = self.model.config
        full = config.max_source_positions
        if int(frames) != frames or not 1 <= frames <= full:
            raise OtoscopeError(f"an encoder window must be 1 to {full} frames (0.02 to {full / 50:g} s), got {frames}.")
        frames = int(frames)
        encoder = _base(self.model).encoder
        positions = encoder.embed_positions
        short = nn.Embedding(frames, positions.embedding_dim, _weight=positions.weight.detach()[:frames],
                             _freeze=True)
        cached = self.__dict__.pop("geometry", None)
        encoder.embed_positions, config.max_source_positions = short, frames
        encoder.max_source_positions = frames
        self.__dict__["geometry"] = whisper_geometry(frames)
        try:
            yield self.geometry
        finally:
            encoder.embed_positions, config.max_source_positions = positions, full
            encoder.max_source_positions = full
            self.__dict__.pop("geometry", None)
            if cached is not None:
                self.__dict__["geometry"] = cached

    @property
    def has_decoder(self) -> bool:
        return True

    @property
    def can_transcribe(self) -> bool:
        return True

    @property
    def lens_kinds(self) -> frozenset[str]:
        return frozenset({"encoder", "decoder", "tuned"})

    @property
    def max_text_tokens(self) -> int:
        return self.model.config.max_target_positions - len(self.task_prefix())

    # ------------------------------------------------------------------ tokens
    @property
    def english_only(self) -> bool:
        """True for ``.en`` checkpoints (no language or task tokens in the prompt)."""
        gen = getattr(self.model, "generation_config", None)
        multilingual = getattr(gen, "is_multilingual", None)
        if multilingual is None:
            multilingual = self.model.config.vocab_size >= MULTILINGUAL_VOCAB
        return not multilingual

    def task_prefix(self, language: str | None = "en", task: str = "transcribe") -> list[int]:
        """``<|startoftranscript|>[<|lang|><|task|>]<|notimestamps|>``."""
        ids = [self.token_id("<|startoftranscript|>")]
        if not self.english_only:
            ids += [self.token_id(f"<|{language or 'en'}|>"), self.token_id(f"<|{task}|>")]
        return ids + [self.token_id("<|notimestamps|>")]

    # ------------------------------------------------------------------ inputs and forward
    def prepare(self, clips: list["Clip"], text=None, *, tokens=None, prompt=None,
                language: str | None = "en") -> ModelInputs:
        """Log-mel features of the 30 s window and decoder rows: ``[prompt] task prefix + text``.

        ``text`` (a string, or one per clip) or ``tokens`` (ids, or one list per clip) is the teacher-forced
        transcript after the task prefix; ``prompt`` is Whisper's previous-text prompt, placed before
        ``<|startoftranscript|>`` behind ``<|startofprev|>``.
        """
        features = whisper_features(self.feature_extractor, clips, self.geometry)
        mask = self.geometry.frame_mask([len(c.samples) for c in clips], self.geometry.window_frames)
        rows, prefix_len = self._decoder_rows(len(clips), text, tokens, prompt, language)
        ids, token_mask = pad_tokens(rows, self.eot)
        return ModelInputs(clips, features, mask, None, ids, token_mask, prefix_len)

    def _decoder_rows(self, batch: int, text, tokens, prompt, language) -> tuple[list[list[int]], list[int]]:
        def per_clip(value, what):
            if value is None or isinstance(value, str) or (isinstance(value, (list, tuple)) and value
                                                           and isinstance(value[0], int)):
                return [value] * batch
            value = list(value.tolist() if isinstance(value, torch.Tensor) and value.ndim == 1 else value)
            if len(value) != batch:
                raise OtoscopeError(f"got {len(value)} {what} for {batch} clips; pass one per clip or a single one.")
            return value
        if text is not None and tokens is not None:
            raise OtoscopeError("pass text or tokens, not both.")
        if isinstance(tokens, torch.Tensor):
            tokens = tokens.tolist()
        texts = per_clip(text, "texts") if tokens is None else [None] * batch
        toks = per_clip(tokens, "token lists") if tokens is not None else [None] * batch
        prompts = per_clip(prompt, "prompts")
        prefix = self.task_prefix(language)
        rows, prefix_len = [], []
        for t, k, p in zip(texts, toks, prompts):
            head = ([self.token_id("<|startofprev|>")] + self.to_tokens(p) if p else []) + prefix
            body = list(k) if k is not None else (self.to_tokens(t) if t else [])
            rows.append(head + body)
            prefix_len.append(len(head))
        limit = self.model.config.max_target_positions
        if max(len(r) for r in rows) > limit:
            raise OtoscopeError(f"decoder input is {max(len(r) for r in rows)} tokens; Whisper takes at most {limit}. "
                                "Shorten the text or prompt.")
        return rows, prefix_len

    def _weights(self) -> tuple[torch.device, torch.dtype]:
        param = next(self.model.parameters())
        return param.device, param.dtype

    def forward(self, inputs: ModelInputs) -> torch.Tensor:
        """Logits ``[batch, tokens, vocab]`` of the decoder rows."""
        device, dtype = self._weights()
        out = self.model(input_features=inputs.features.to(device, dtype),
                         decoder_input_ids=inputs.decoder_input_ids.to(device), use_cache=False)
        return out.logits

    def encode(self, inputs: ModelInputs):
        """The encoder alone (the decoder's hooks do not fire) → its output ``[batch, frames, d_model]``."""
        device, dtype = self._weights()
        return self.model.get_encoder()(inputs.features.to(device, dtype)).last_hidden_state

    def fast_patch_runner(self, model):
        # imported here: patching sits above models, and only patching code calls this
        from otoscope.patching.runner import WhisperRunner

        return WhisperRunner(model)

    # ------------------------------------------------------------------ readout
    def final_norm(self, side: str) -> nn.Module | None:
        base = _base(self.model)
        return {"encoder": base.encoder.layer_norm, "decoder": base.decoder.layer_norm}.get(side)

    def unembedding(self, side: str) -> torch.Tensor | None:
        """Decoder: the output projection. Encoder: the decoder's token embeddings (the encoder logit lens
        reads the encoder's normed residual through them; Whisper ties the two)."""
        if side == "encoder":
            return _base(self.model).decoder.embed_tokens.weight
        if side == "decoder" and hasattr(self.model, "proj_out"):
            return self.model.proj_out.weight
        return None

    def readout(self, side: str):
        norm, unembed = self.final_norm(side), self.unembedding(side)
        if norm is None or unembed is None:
            return None
        if side == "decoder":
            return lambda resid: self.model.proj_out(norm(resid))
        return lambda resid: norm(resid) @ unembed.T
