"""The audio-LLM adapter: Qwen2-Audio and Voxtral (Whisper-style encoder → projector → decoder-only LLM).

Both families take one 30 s log-mel window (128 mels, 3000 mel frames → 1500 encoder frames of 20 ms)
and turn it into audio tokens the LLM reads in place of placeholder tokens in its prompt:

* Qwen2-Audio average-pools pairs of encoder frames (one token per 40 ms) and feeds only the tokens of
  real audio (``audio_tower._get_feat_extract_output_lengths``);
* Voxtral stacks 4 frames into one token (one per 80 ms) and feeds all 375 tokens of the window.

Prompts are built with the checkpoint's chat format (:mod:`audio_llm_prompt`), or taken as ``input_ids``
that hold the placeholder (one, which is expanded, or one per audio token); no tokenizer is needed then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from otoscope.audio.frames import WHISPER_MEL_HOP, FrameGeometry, whisper_geometry
from otoscope.audio.io import Clip
from otoscope.errors import AudioError, OtoscopeError
from otoscope.models.adapters.audio_llm_hooks import audio_llm_points
from otoscope.models.adapters.audio_llm_prompt import (QWEN2_AUDIO_CHAT, VOXTRAL_CHAT, LLMPositions,
                                                       expand_placeholder, locate)
from otoscope.models.adapters.base import Adapter
from otoscope.models.inputs import ModelInputs

FAMILIES = {"Qwen2AudioForConditionalGeneration": "qwen2audio", "VoxtralForConditionalGeneration": "voxtral"}


@dataclass
class AudioLLMInputs(ModelInputs):
    """Model inputs of an audio-LLM: log-mel features plus the LLM's token rows and their positions."""

    input_ids: torch.Tensor | None = None
    """``[batch, tokens]`` prompt (placeholders expanded) + teacher-forced answer, right-padded."""
    feature_mask: torch.Tensor | None = None
    """``[batch, mel_frames]`` Qwen2-Audio's mask of real log-mel frames (None for Voxtral)."""
    positions: list[LLMPositions] = field(default_factory=list)
    """Per row: where audio tokens, prompt and answer sit."""


@dataclass
class GeneratedText:
    """A greedy continuation of an audio-LLM prompt."""

    text: str | None
    """The new tokens decoded (None without a tokenizer)."""
    tokens: list[int]
    """The new token ids (the end-of-sequence token, when reached, included)."""
    prompt_tokens: int
    """Length of the prompt the model continued."""


class AudioLLMAdapter(Adapter):
    """Qwen2AudioForConditionalGeneration and VoxtralForConditionalGeneration."""

    family: ClassVar[str] = "audio-llm"
    supports: ClassVar[str] = "Qwen2-Audio, Voxtral (audio-LLMs)"
    sides: ClassVar[tuple[str, ...]] = ("audio.encoder", "llm")
    input_kind: ClassVar[str] = "mel"
    extra_inputs: ClassVar[tuple[str, ...]] = ("input_ids", "answer", "chat")

    def __init__(self, hf_model: nn.Module, feature_extractor=None, tokenizer=None):
        super().__init__(hf_model, feature_extractor, tokenizer)
        self.kind = FAMILIES[type(hf_model).__name__]
        config = hf_model.config
        self.placeholder = int(config.audio_token_id)
        tower = hf_model.model.audio_tower
        self.window_frames = int(tower.config.max_source_positions)
        self._geometry = whisper_geometry(self.window_frames)
        frame = WHISPER_MEL_HOP * tower.conv1.stride[0] * tower.conv2.stride[0]  # samples per encoder frame
        if self.kind == "qwen2audio":
            self.frames_per_token = int(tower.avg_pooler.stride[0])
        else:  # the projector reads frames stacked to intermediate_size = k × d_model
            self.frames_per_token = int(config.audio_config.intermediate_size // config.audio_config.hidden_size)
        self.samples_per_token = frame * self.frames_per_token
        self.tokens_per_window = self.window_frames // self.frames_per_token

    # ------------------------------------------------------------------ structure
    @classmethod
    def matches(cls, hf_model: nn.Module) -> bool:
        return type(hf_model).__name__ in FAMILIES

    def hook_points(self):
        return audio_llm_points(self.model, self.tokens_per_window, stacked=self.kind == "voxtral")

    @property
    def geometry(self) -> FrameGeometry:
        return self._geometry

    @property
    def has_decoder(self) -> bool:
        return True

    @property
    def llm(self) -> nn.Module:
        """The decoder-only language model (its ``layers``, ``norm``, ``rotary_emb``)."""
        return self.model.model.language_model

    @property
    def seconds_per_token(self) -> float:
        """Audio time one audio token covers (Qwen2-Audio 0.04 s, Voxtral 0.08 s)."""
        return self.samples_per_token / self._geometry.sample_rate

    def final_norm(self, side: str) -> nn.Module | None:
        if side == "llm":
            return self.llm.norm
        return self.model.model.audio_tower.layer_norm if side == "audio" else None

    def unembedding(self, side: str) -> torch.Tensor | None:
        return self.model.lm_head.weight if side == "llm" else None

    def readout(self, side: str):
        if side != "llm":
            return None
        return lambda resid: self.model.lm_head(self.llm.norm(resid))

    def example_inputs(self) -> dict:
        return {"audio": np.zeros(self._geometry.sample_rate, dtype=np.float32), "input_ids": [self.placeholder, 0, 0]}

    # ------------------------------------------------------------------ inputs
    def n_audio_tokens(self, feature_mask: torch.Tensor | None, batch: int) -> list[int]:
        """Audio tokens each clip gives, by the model's own arithmetic."""
        if self.kind == "voxtral":
            return [self.tokens_per_window] * batch
        _, out = self.model.model.audio_tower._get_feat_extract_output_lengths(feature_mask.sum(-1))
        return [int(n) for n in out]

    def _prompt_ids(self, text: str, n_audio: int, chat: bool) -> list[int]:
        if self.tokenizer is None:
            raise OtoscopeError(f"this {self.kind} model has no tokenizer; pass input_ids holding the audio placeholder "
                                f"(id {self.placeholder}), or load a checkpoint folder with its tokenizer"
                                + (" (Voxtral's needs: pip install mistral-common)." if self.kind == "voxtral" else "."))
        mark = self.tokenizer.convert_ids_to_tokens(self.placeholder)
        if chat:
            text = (QWEN2_AUDIO_CHAT if self.kind == "qwen2audio" else VOXTRAL_CHAT).format(audio=mark, prompt=text)
        ids = list(self.tokenizer(text, add_special_tokens=False).input_ids)
        return expand_placeholder(ids, self.placeholder, n_audio, self.kind)

    def answer_ids(self, answer) -> list[int]:
        if answer is None:
            return []
        if isinstance(answer, str):
            if self.tokenizer is None:
                raise OtoscopeError("answer= as text needs a tokenizer; pass the answer's token ids instead.")
            return list(self.tokenizer(answer, add_special_tokens=False).input_ids)
        return [int(t) for t in answer]

    def prepare(self, clips: list[Clip], text=None, *, tokens=None, prompt=None, language: str | None = None,
                input_ids=None, answer=None, chat: bool = True) -> AudioLLMInputs:
        """Features and LLM rows for ``clips`` (one prompt for all, or one per clip).

        ``text`` (alias ``prompt``): the user's prompt, wrapped in the chat format with the audio placeholder
        (``chat=False``: used as is, and must hold the placeholder). ``input_ids`` (alias ``tokens``): ids that
        hold the placeholder. ``answer``: text or ids appended as a teacher-forced answer.
        """
        if prompt is not None:
            if text is not None:
                raise OtoscopeError("pass the prompt as text= or prompt=, not both.")
            text = prompt
        if tokens is not None:
            if input_ids is not None:
                raise OtoscopeError("pass input_ids= or tokens=, not both.")
            input_ids = tokens
        if (text is None) == (input_ids is None):
            raise OtoscopeError(f"an audio-LLM needs a prompt: pass text='...' (or input_ids=[...] holding the audio "
                                f"placeholder id {self.placeholder}), one of the two.")
        batch = len(clips)
        limit = self._geometry.window_samples
        for clip in clips:
            if len(clip.samples) > limit:
                raise AudioError(f"{clip.name} is {clip.seconds:.1f} s but {self.kind} hears one "
                                 f"{limit / self._geometry.sample_rate:.0f} s window; trim or split the clip.")
        fe = self.feature_extractor(
            [c.samples for c in clips], sampling_rate=self._geometry.sample_rate, return_attention_mask=True,
            padding="max_length", return_tensors="pt")
        feature_mask = fe["attention_mask"] if self.kind == "qwen2audio" else None
        counts = self.n_audio_tokens(fe["attention_mask"], batch)
        texts, idss, answers = (_per_clip(v, batch, what) for v, what in
                                ((text, "prompts"), (input_ids, "input_ids rows"), (answer, "answers")))
        rows, positions = [], []
        for i, clip in enumerate(clips):
            if texts[i] is not None:
                ids = self._prompt_ids(texts[i], counts[i], chat)
            else:
                ids = expand_placeholder([int(t) for t in idss[i]], self.placeholder, counts[i], self.kind)
            tail = self.answer_ids(answers[i])
            rows.append(ids + tail)
            positions.append(locate(ids + tail, self.placeholder, len(tail), self.seconds_per_token, clip.seconds))
        limit_tokens = getattr(self.llm.config, "max_position_embeddings", None)
        if limit_tokens and max(len(r) for r in rows) > limit_tokens:
            raise OtoscopeError(f"the LLM input is {max(len(r) for r in rows)} tokens; this model takes at most "
                                f"{limit_tokens}. Shorten the prompt or the clip.")
        pad = self.model.config.text_config.pad_token_id
        width = max(len(r) for r in rows)
        ids = torch.full((batch, width), 0 if pad is None else int(pad), dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = True
        frames = self._geometry.frame_mask([len(c.samples) for c in clips], self.window_frames)
        return AudioLLMInputs(clips, fe["input_features"], frames, None, None, mask,
                              [p.readout + 1 for p in positions], input_ids=ids, feature_mask=feature_mask,
                              positions=positions)

    # ------------------------------------------------------------------ forward
    def model_kwargs(self, inputs: AudioLLMInputs) -> dict:
        """Keyword arguments for the HF model's ``forward`` / ``generate``."""
        device = self.model.lm_head.weight.device
        kwargs = dict(input_ids=inputs.input_ids.to(device),
                      input_features=inputs.features.to(device, self.model.lm_head.weight.dtype),
                      attention_mask=inputs.token_mask.long().to(device))
        if inputs.feature_mask is not None:
            kwargs["feature_attention_mask"] = inputs.feature_mask.to(device)
        return kwargs

    def forward(self, inputs: AudioLLMInputs) -> torch.Tensor:
        """Logits ``[batch, tokens, vocab]``."""
        return self.model(**self.model_kwargs(inputs), use_cache=False).logits

    @torch.no_grad()
    def generate(self, inputs: AudioLLMInputs, max_new_tokens: int = 64) -> list[GeneratedText]:
        """Greedy decoding with the HF KV cache, one row at a time (token-identical to ``generate``)."""
        from transformers import DynamicCache

        eos = self.model.generation_config.eos_token_id
        stop = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
        results = []
        for row in range(len(inputs.clips)):
            n = int(inputs.token_mask[row].sum())
            one = AudioLLMInputs(inputs.clips[row:row + 1], inputs.features[row:row + 1], inputs.frame_mask[row:row + 1],
                                 token_mask=inputs.token_mask[row:row + 1, :n], input_ids=inputs.input_ids[row:row + 1, :n],
                                 feature_mask=None if inputs.feature_mask is None else inputs.feature_mask[row:row + 1])
            kwargs = self.model_kwargs(one)
            cache = DynamicCache(config=self.model.config.text_config)
            out = self.model(**kwargs, cache=cache, use_cache=True)
            new: list[int] = []
            for _ in range(max_new_tokens):
                token = int(out.logits[0, -1].argmax())
                new.append(token)
                if token in stop:
                    break
                step = torch.tensor([[token]], device=kwargs["input_ids"].device)
                out = self.model(input_ids=step, cache=out.cache, use_cache=True)
            text = None if self.tokenizer is None else self.tokenizer.decode(new, skip_special_tokens=True)
            results.append(GeneratedText(text, new, n))
        return results


def _per_clip(value, batch: int, what: str) -> list:
    """``value`` once per clip: a single prompt/ids/answer is shared, a list of ``batch`` is taken as given."""
    if value is None or isinstance(value, str):
        return [value] * batch
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    value = list(value)
    if value and all(isinstance(v, (int, np.integer)) for v in value):
        return [value] * batch
    if len(value) != batch:
        raise OtoscopeError(f"got {len(value)} {what} for {batch} clips; pass one per clip or a single one.")
    return value
