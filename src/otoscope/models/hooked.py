"""HookedAudioModel: a transformers audio model wrapped in place with canonical hook points.

Nothing is re-implemented: the Hugging Face modules run as they are, and hooks attach to them.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from otoscope.audio.frames import FrameGeometry
from otoscope.audio.io import AudioLike, Clip, to_clips
from otoscope.errors import OtoscopeError
from otoscope.hooks.cache import ActivationCache
from otoscope.hooks.manager import HookFn, installed
from otoscope.hooks.points import HookPoint
from otoscope.hooks.select import NamesFilter, check_name, select
from otoscope.models.adapters import Adapter, adapter_for
from otoscope.models.adapters.audio_llm import AudioLLMAdapter
from otoscope.models.inputs import ModelInputs

TextLike = "str | Sequence[str] | None"


@dataclass(frozen=True)
class HookInfo:
    """One row of the hook table."""

    name: str
    """Canonical hook name."""
    shape: str
    """Documented shape with axis names."""
    example: tuple[int, ...] | None
    """Shape seen on a 1 s clip with a short decoder prompt (None when not measured)."""
    doc: str
    """What the activation is."""


class HookedAudioModel(nn.Module):
    """A Hugging Face audio model with TransformerLens-style hooks, caching and transcription."""

    def __init__(self, hf_model: nn.Module, feature_extractor, tokenizer=None, name: str = "model", source: str = "?"):
        super().__init__()
        self.model = hf_model.eval()
        self.name = name
        self.source = source
        self.adapter: Adapter = adapter_for(hf_model, feature_extractor, tokenizer)
        """Everything family-specific: hook table, inputs, geometry, readouts, capabilities."""
        self.adapter.name = name
        self.points: dict[str, HookPoint] = {p.name: p for p in self.adapter.hook_points()}
        self.geometry: FrameGeometry = self.adapter.geometry
        self.encoder_seconds: float | None = None
        """Seconds of a shortened encoder window in force (:meth:`encoder_window`), else None."""

    # ----------------------------------------------------------------- properties
    @property
    def tokenizer(self):
        """The text tokenizer (None for models without one); the adapter holds it."""
        return self.adapter.tokenizer

    @tokenizer.setter
    def tokenizer(self, value) -> None:
        self.adapter.tokenizer = value
        self.adapter._special = None  # the special-token ids came from the old tokenizer

    @property
    def feature_extractor(self):
        """The HF feature extractor that turns waveforms into model inputs; the adapter holds it."""
        return self.adapter.feature_extractor

    @property
    def config(self):
        """The transformers config."""
        return self.model.config

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the weights."""
        return next(self.model.parameters()).dtype

    @property
    def family(self) -> str:
        """The adapter's family name (``whisper``, ``ctc``…)."""
        return self.adapter.family

    @property
    def is_whisper(self) -> bool:
        """Deprecated: ask :attr:`adapter` for the capability instead (``has_decoder``, ``lens_kinds``…)."""
        warnings.warn("model.is_whisper is deprecated; ask model.adapter for the capability you need "
                      "(has_decoder, lens_kinds, decoding…) or compare model.family.", DeprecationWarning, stacklevel=2)
        return self.family == "whisper"

    @property
    def has_decoder(self) -> bool:
        """True when a token stream reads the audio (Whisper's decoder)."""
        return self.adapter.has_decoder

    @property
    def n_layers(self) -> int:
        """Encoder blocks."""
        return sum(1 for n in self.points if n.startswith("encoder.blocks.") and n.endswith(".hook_resid_post"))

    @property
    def n_decoder_layers(self) -> int:
        """Decoder blocks (0 for encoder-only models)."""
        return sum(1 for n in self.points if n.startswith("decoder.blocks.") and n.endswith(".hook_resid_post"))

    @property
    def n_llm_layers(self) -> int:
        """LLM blocks of an audio-LLM (0 for other models)."""
        return sum(1 for n in self.points if n.startswith("llm.blocks.") and n.endswith(".hook_resid_post"))

    @property
    def llm_adapter(self) -> "AudioLLMAdapter | None":
        """The adapter when this is an audio-LLM (its prompts, positions, LLM and generation), else None."""
        return self.adapter if isinstance(self.adapter, AudioLLMAdapter) else None

    @property
    def english_only(self) -> bool:
        """True for Whisper ``.en`` checkpoints (no language or task tokens in the prompt)."""
        return getattr(self.adapter, "english_only", False)

    # ----------------------------------------------------------------- tokens
    def token_id(self, token: str) -> int:
        """Id of a special token such as ``<|endoftext|>``."""
        return self.adapter.token_id(token)

    @property
    def eot(self) -> int:
        """The end-of-text token id (Whisper's ``<|endoftext|>``)."""
        return self.adapter.eot

    def task_prefix(self, language: str | None = "en", task: str = "transcribe") -> list[int]:
        """The decoder prefix (Whisper: ``<|startoftranscript|>[<|lang|><|task|>]<|notimestamps|>``; ``[]`` without a decoder)."""
        return self.adapter.task_prefix(language, task)

    def to_tokens(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens). Whisper transcripts start with a space: ``" The cat"``."""
        return self.adapter.to_tokens(text)

    def to_string(self, tokens) -> str:
        """Decode token ids to text, dropping special tokens."""
        if isinstance(tokens, torch.Tensor):
            tokens = tokens.tolist()
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    # ----------------------------------------------------------------- inputs
    def clips(self, audio: AudioLike | Sequence[AudioLike], sample_rate: int | None = None) -> list[Clip]:
        """Load and validate audio (paths, arrays at ``sample_rate``, tensors) at the model's rate."""
        return to_clips(audio, self.geometry.sample_rate, sample_rate)

    def prepare(self, audio=None, text=None, *, tokens=None, prompt=None, language: str | None = "en",
                sample_rate: int | None = None, **extra) -> ModelInputs:
        """Build model inputs for a batch of clips.

        For Whisper, ``text`` (a string, or one per clip) or ``tokens`` (ids, or one list per clip) is the
        teacher-forced transcript after the task prefix; ``prompt`` is Whisper's previous-text prompt,
        placed before ``<|startoftranscript|>`` behind ``<|startofprev|>``. Encoder-only models take no text.
        Text-to-audio models (MusicGen) take no audio: ``text`` is the prompt (or ``input_ids=``) and
        ``audio_codes=`` the teacher-forced codes. ``extra``: the family's own inputs (``adapter.extra_inputs``).
        Audio-LLMs: ``text`` is the user's prompt, or ``input_ids=`` ids holding the audio placeholder
        (``answer=``, ``chat=``: see :meth:`AudioLLMAdapter.prepare`).
        """
        unknown = [k for k in extra if k not in self.adapter.extra_inputs]
        if unknown:
            takes = ", ".join(self.adapter.extra_inputs) or "none"
            raise OtoscopeError(f"{self.name} ({self.family}) takes no {', '.join(unknown)}; its extra inputs: {takes}.")
        if audio is None and self.adapter.input_kind == "tokens":
            clips = []
        else:
            clips = audio if isinstance(audio, list) and audio and all(isinstance(c, Clip) for c in audio) \
                else self.clips(audio, sample_rate)
        return self.adapter.prepare(clips, text, tokens=tokens, prompt=prompt, language=language, **extra)

    # ----------------------------------------------------------------- forward
    def forward_inputs(self, inputs: ModelInputs) -> torch.Tensor:
        """Run the model on prepared inputs → logits (Whisper: ``[batch, tokens, vocab]``; CTC:
        ``[batch, frames, vocab]``; bare encoders: last hidden state ``[batch, frames, d_model]``)."""
        return self.adapter.forward(inputs)

    def forward(self, audio=None, text=None, **kwargs) -> torch.Tensor:
        """Logits for ``audio`` (and teacher-forced ``text`` for Whisper); see :meth:`prepare` for kwargs."""
        inputs = audio if isinstance(audio, ModelInputs) else self.prepare(audio, text, **kwargs)
        return self.forward_inputs(inputs)

    # ----------------------------------------------------------------- hooks
    def hook_names(self, names_filter: NamesFilter = None) -> list[str]:
        """Hook point names in forward order (attention patterns only when the filter names them)."""
        return select(self.points, names_filter) if names_filter is not None else list(self.points)

    def hook_table(self, measure: bool = True) -> list[HookInfo]:
        """Every hook point with its documented shape, an example shape measured on a 1 s clip, and its meaning."""
        example: dict[str, tuple[int, ...]] = {}
        if measure:
            grabbed = {}
            hooks = [(n, lambda t, h: grabbed.__setitem__(h.name, tuple(t.shape))) for n in self.points]
            with torch.no_grad(), self.hooks(hooks):
                self(**self.adapter.example_inputs())
            example = grabbed
        return [HookInfo(n, p.shape, example.get(n), p.doc) for n, p in self.points.items()]

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]] = ()) -> Iterator["HookedAudioModel"]:
        """Context manager that installs ``(name or filter, fn)`` hooks and removes them on exit.

        ``fn(activation, hook)`` may return a replacement tensor of the same shape.
        """
        pairs = []
        for key, fn in fwd_hooks:
            names = select(self.points, key) if (callable(key) or any(c in key for c in "*?[")) else [check_name(key, self.points)]
            pairs += [(n, fn) for n in names]
        with installed(self.model, self.points, pairs):
            yield self

    @contextlib.contextmanager
    def encoder_window(self, seconds: float | None) -> Iterator["HookedAudioModel"]:
        """Run Whisper with its encoder over only the first ``seconds`` of its 30 s window (None: unchanged).

        Inside the block every call (``prepare``, ``run_with_cache``, patching, ``transcribe``) sees an encoder of
        ``ceil(seconds · 50)`` frames, and ``model.geometry.window_frames`` says so; clips longer than the window
        are refused. Like whisper.cpp's ``audio_ctx``, it trades fidelity for speed (a 3 s clip in a 5 s window
        costs a sixth of the encoder work): results under a window compare with each other, not with the full
        window's. Models without a fixed window (wav2vec2, HuBERT, …) raise an error naming the option.
        """
        if seconds is None:
            yield self
            return
        if not seconds > 0:
            raise OtoscopeError(f"an encoder window must be a positive number of seconds, got {seconds}.")
        frames = -(-round(float(seconds) * self.geometry.sample_rate) // self.geometry.samples_per_frame)
        with self.adapter.encoder_window(frames) as geometry:
            full, self.geometry = self.geometry, geometry
            outer, self.encoder_seconds = self.encoder_seconds, float(seconds)
            try:
                yield self
            finally:
                self.geometry, self.encoder_seconds = full, outer

    @contextlib.contextmanager
    def attention_mask(self, names_filter: NamesFilter, mask: torch.Tensor) -> Iterator["HookedAudioModel"]:
        """Restrict the attention of the chosen layers to ``mask`` for the block (an attention knockout).

        ``names_filter`` picks attention hook points (``"encoder.blocks.*.attn.hook_pattern"``, or any
        name under ``...attn.`` / ``...cross_attn.``); ``mask`` is boolean, True where a query may attend,
        broadcastable to ``[batch, heads, query, key]``. Runs the fused SDPA kernel with the mask.
        """
        from otoscope.hooks.attention import attention_masks

        names = select(self.points, names_filter) if (callable(names_filter) or not isinstance(names_filter, str)
                                                      or any(c in names_filter for c in "*?[")) else [check_name(names_filter, self.points)]
        modules = {}
        for name in names:
            prefix = name.rsplit(".", 1)[0]
            point = self.points.get(prefix + ".hook_pattern")
            if point is None:
                raise OtoscopeError(f"{name} is not in an attention layer with a pattern hook; pick '...attn.hook_pattern' names.")
            modules[point.module] = mask
        if not mask.dtype == torch.bool:
            raise OtoscopeError(f"attention mask must be boolean (True = may attend), got {mask.dtype}.")
        with attention_masks(self.model, modules):
            yield self

    def add_sae(self, sae, hook: str | None = None, *, use_error_term: bool = False):
        """Context manager: splice ``sae`` in at ``hook`` (default: the SAE's own hook name).

        While it is active, ``{hook}.hook_sae_acts`` (and ``_input``, ``_recons``, ``_error``) are hook
        points like any other; see :func:`otoscope.sae.splice.splice`.
        """
        from otoscope.sae.splice import splice

        return splice(self, sae, hook, use_error_term=use_error_term)

    def run_with_hooks(self, audio=None, text=None, fwd_hooks=(), *, grad: bool = False, **kwargs) -> torch.Tensor:
        """Forward with temporary hooks → logits. ``grad=True`` keeps the autograd graph."""
        with torch.set_grad_enabled(grad), self.hooks(fwd_hooks):
            return self(audio, text, **kwargs)

    def run_with_cache(self, audio=None, text=None, names_filter: NamesFilter = None, *, device=None,
                       grad: bool = False, **kwargs) -> tuple[torch.Tensor, ActivationCache]:
        """Forward and cache activations → ``(logits, cache)``.

        ``names_filter``: None (every hook but attention patterns), a name, a glob, a list, or a callable.
        ``device``: where cached tensors go (default: stay where computed).
        """
        names = select(self.points, names_filter)
        inputs = audio if isinstance(audio, ModelInputs) else self.prepare(audio, text, **kwargs)
        store: dict[str, torch.Tensor] = {}

        def save(tensor, hook):
            value = tensor if grad else tensor.detach()
            store[hook.name] = value.to(device) if device is not None else value

        with torch.set_grad_enabled(grad), self.hooks([(n, save) for n in names]):
            logits = self.forward_inputs(inputs)
        ordered = {n: store[n] for n in names if n in store}
        cache = ActivationCache(ordered, inputs.frame_mask, self.geometry, inputs.token_mask,
                                [c.name for c in inputs.clips], text_mask=inputs.text_mask,
                                positions=getattr(inputs, "positions", None))
        return logits, cache

    # ----------------------------------------------------------------- transcription
    def transcribe(self, audio, *, batch_size: int = 8, language: str | None = None, max_new_tokens: int = 224,
                   progress: bool = False, sample_rate: int | None = None, exact: bool = False,
                   repetition=None, no_speech_threshold: float | None = None,
                   logprob_threshold: float | None = None):
        """Greedy transcription. One clip → a :class:`Transcription`; a list → a list of them.

        Whisper decodes with a KV cache, batched, and splits clips longer than 30 s into consecutive
        30 s windows whose texts are joined. ``language=None`` detects it on multilingual checkpoints.
        Each result carries Whisper's ``no_speech_prob``, ``avg_logprob`` and ``compression_ratio``.
        A decode that loops on one short block is stopped (``repetition``: a
        :class:`~otoscope.models.safeguards.RepetitionGuard`; ``repetition_stopped`` says so);
        ``exact=True`` turns that off for tokens identical to plain greedy decoding.
        ``no_speech_threshold`` (and optionally ``logprob_threshold``) empty windows openai/whisper
        would skip as silent. CTC models take the frame-wise argmax and collapse repeats; their
        Whisper-only figures are None.
        """
        from otoscope.models.decode import transcribe

        single = not isinstance(audio, (list, tuple))
        results = transcribe(self, self.clips(audio, sample_rate), batch_size=batch_size, language=language,
                             max_new_tokens=max_new_tokens, progress=progress, exact=exact, repetition=repetition,
                             no_speech_threshold=no_speech_threshold, logprob_threshold=logprob_threshold)
        return results[0] if single else results

    def generate_text(self, audio, prompt=None, *, input_ids=None, max_new_tokens: int = 64, chat: bool = True,
                      sample_rate: int | None = None):
        """Greedy continuation of ``prompt`` about ``audio`` with the KV cache (audio-LLMs only).

        One clip → a :class:`~otoscope.models.adapters.audio_llm.GeneratedText` (``.text``, ``.tokens``);
        a list → a list of them. Token-identical to transformers' ``generate(do_sample=False)``.
        """
        if self.llm_adapter is None:
            raise OtoscopeError(f"{self.name} is not an audio-LLM; use model.transcribe for Whisper and CTC models.")
        single = not isinstance(audio, (list, tuple))
        inputs = self.prepare(audio, prompt, input_ids=input_ids, chat=chat, sample_rate=sample_rate)
        results = self.llm_adapter.generate(inputs, max_new_tokens)
        return results[0] if single else results

    def generate_audio(self, prompt=None, *, seconds: float = 5.0, seed: int = 0, input_ids=None,
                       guidance_scale: float = 3.0, top_k: int = 250, temperature: float = 1.0):
        """Sample ``seconds`` of audio for a text prompt with a fixed seed (text-to-audio models: MusicGen).

        Returns a :class:`~otoscope.models.adapters.musicgen.GeneratedAudio` (``.samples``, ``.sample_rate``,
        ``.codes`` ``[codebooks, frames]``). Hooks installed with :meth:`hooks` apply while it samples.
        """
        generate = getattr(self.adapter, "generate_audio", None)
        if generate is None:
            raise OtoscopeError(f"{self.name} ({self.family}) does not generate audio; generate_audio is for "
                                "text-to-audio models such as musicgen-small.")
        return generate(prompt, seconds=seconds, seed=seed, input_ids=input_ids, guidance_scale=guidance_scale,
                        top_k=top_k, temperature=temperature)

    def word_timestamps(self, audio, *, text=None, batch_size: int = 8, language: str | None = None,
                        progress: bool = False, sample_rate: int | None = None):
        """Word spans from the cross-attention of Whisper's alignment heads (openai-whisper's method).

        One clip → a :class:`~otoscope.models.align.WordTimestamps` (``.words``: ``WordSpan(word, start,
        end, probability)``, ``.text``, ``.to_frame()``); a list → a list of them. ``text`` (a string, or
        one per clip) is aligned as given instead of the greedy transcript. Whisper only.
        """
        from otoscope.models.align import word_timestamps

        single = not isinstance(audio, (list, tuple))
        clips = self.clips(audio, sample_rate)
        texts = [text] * len(clips) if text is None or isinstance(text, str) else list(text)
        results = word_timestamps(self, clips, texts, batch_size=batch_size, language=language, progress=progress)
        return results[0] if single else results

    def __repr__(self) -> str:
        return (f"HookedAudioModel({self.name!r}, source={self.source!r}, {type(self.model).__name__}, "
                f"encoder_layers={self.n_layers}, decoder_layers={self.n_decoder_layers}, hooks={len(self.points)})")


from otoscope.models.loader import load  # noqa: E402,F401  (its home before it moved: older imports keep working)
