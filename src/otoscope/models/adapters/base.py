"""The architecture adapter: everything family-specific that the rest of otoscope needs to know.

One adapter per model family (Whisper encoder-decoder, CTC/bare speech encoders, audio-LLMs,
text-to-music). :class:`~otoscope.models.hooked.HookedAudioModel` owns one and delegates to it; lenses,
geometry, patching, SAE and steering code ask the adapter (``model.adapter``) instead of testing the
family. Adding a family means one new file here plus one line in :data:`ADAPTERS`
(``otoscope.models.adapters.__init__``).

Shapes follow the package glossary: ``[batch, frames, d_model]`` on the audio side,
``[batch, tokens, d_model]`` on the text side.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from otoscope.errors import OtoscopeError

if TYPE_CHECKING:  # typing only: keeps this module's import cheap
    from otoscope.audio.frames import FrameGeometry
    from otoscope.audio.io import Clip
    from otoscope.hooks.points import HookPoint
    from otoscope.models.inputs import ModelInputs


class Adapter(ABC):
    """What one model family looks like to otoscope. Subclasses wrap, never re-implement, the HF model."""

    family: ClassVar[str]
    """Short family name shown to users: ``whisper``, ``ctc``, ``audio-llm``, ``musicgen``."""
    supports: ClassVar[str] = ""
    """The model classes it handles, for the unsupported-architecture message (``family`` when empty)."""
    sides: ClassVar[tuple[str, ...]] = ("encoder",)
    """Hook-name prefixes of the residual streams, in forward order (``("encoder", "decoder")`` for Whisper)."""
    input_kind: ClassVar[str] = "waveform"
    """What :attr:`ModelInputs.features` holds: ``"waveform"`` ``[batch, samples]``, ``"mel"`` ``[batch, mels, time]``
    or ``"tokens"`` (a text prompt's ids ``[batch, tokens]``: text-to-audio models, which take no audio)."""
    extra_inputs: ClassVar[tuple[str, ...]] = ()
    """Keyword arguments :meth:`prepare` takes beyond the common ones (MusicGen: ``input_ids``, ``audio_codes``)."""
    decoding: ClassVar[str | None] = None
    """Which greedy decoder :func:`otoscope.models.decode.transcribe` runs: ``"seq2seq"`` (Whisper's windowed
    autoregressive decoder, which can also start from any encoder output: the encoder lens, attention locality
    and silence steering need it), ``"ctc"`` (frame-wise argmax of a CTC head) or None."""

    def __init__(self, hf_model: nn.Module, feature_extractor=None, tokenizer=None):
        self.model = hf_model
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.name = "model"
        """The model's name in messages (:class:`HookedAudioModel` sets it)."""
        self._special: dict[str, int] | None = None

    # ------------------------------------------------------------------ recognition
    @classmethod
    @abstractmethod
    def matches(cls, hf_model: nn.Module) -> bool:
        """True when this adapter handles ``hf_model`` (decided from its class and config)."""

    # ------------------------------------------------------------------ structure
    @abstractmethod
    def hook_points(self) -> list["HookPoint"]:
        """Every hook point of the model in forward order (the hook table)."""

    @property
    @abstractmethod
    def geometry(self) -> "FrameGeometry":
        """Sample/frame/second conversion of the audio encoder's frames."""

    @property
    def has_decoder(self) -> bool:
        """True when a token stream reads the audio (Whisper's decoder, an audio-LLM's LLM)."""
        return False

    @property
    def has_ctc_head(self) -> bool:
        """True for encoder-only models with a CTC head (they transcribe frame-wise)."""
        return False

    @property
    def can_transcribe(self) -> bool:
        """True when :meth:`HookedAudioModel.transcribe` applies."""
        return False

    @property
    def lens_kinds(self) -> frozenset[str]:
        """The lenses that apply: ``"encoder"`` (encoder logit lens and encoder lens: per-layer encoder states
        read through the text unembedding and decoded), ``"decoder"`` (decoder logit lens), ``"ctc"`` (CTC-head
        lens), ``"tuned"`` (tuned lens training). The one "which lenses apply" test."""
        return frozenset()

    @property
    def max_text_tokens(self) -> int | None:
        """Most teacher-forced tokens :meth:`prepare` takes after :meth:`task_prefix` (None: takes no text)."""
        return None

    # ------------------------------------------------------------------ tokens
    def token_id(self, token: str) -> int:
        """Id of a special token such as ``<|endoftext|>``."""
        if self.tokenizer is None:
            raise OtoscopeError(f"{self.name} has no tokenizer.")
        if self._special is None:
            self._special = dict(self.tokenizer.get_added_vocab())
        if token not in self._special:
            raise OtoscopeError(f"{self.name}'s tokenizer has no token {token}.")
        return int(self._special[token])

    def to_tokens(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens)."""
        if self.tokenizer is None:
            raise OtoscopeError(f"{self.name} has no tokenizer; pass token ids instead of text.")
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    @property
    def eot(self) -> int:
        """The end-of-text token id (it also pads token rows)."""
        return self.token_id("<|endoftext|>")

    def task_prefix(self, language: str | None = "en", task: str = "transcribe") -> list[int]:
        """Token ids every decoder row starts with before the text (``[]`` for families without one)."""
        return []

    # ------------------------------------------------------------------ inputs and forward
    @abstractmethod
    def prepare(self, clips: list["Clip"], text=None, *, tokens=None, prompt=None,
                language: str | None = "en") -> "ModelInputs":
        """Model inputs for a batch of clips (plus teacher-forced text where the family takes it).
        Families that take no text raise :class:`~otoscope.errors.OtoscopeError` when given some."""

    @abstractmethod
    def forward(self, inputs: "ModelInputs") -> torch.Tensor:
        """Run the HF model on prepared inputs → its logits (or last hidden state for bare encoders)."""

    def example_inputs(self) -> dict:
        """Keyword arguments of :meth:`HookedAudioModel.prepare` for a small example run (the hook table's
        measured shapes): one second of silence unless the family needs something else."""
        import numpy as np

        return {"audio": np.zeros(self.geometry.sample_rate, dtype=np.float32)}

    def encode(self, inputs: "ModelInputs"):
        """Run as little of the model as fires every audio-encoder hook (the whole model unless overridden)."""
        return self.forward(inputs)

    def encoder_window(self, frames: int):
        """Context manager: the encoder over its first ``frames`` frames only (implemented for Whisper).

        Models whose input length is free have no window to shorten."""
        what = ("takes audio of any length, so it has no fixed encoder window to shorten"
                if self.geometry.window_frames is None else "has no shortened encoder window (Whisper has)")
        raise OtoscopeError(f"{self.supports} {what}; run it without an encoder window (bench: --encoder-seconds 30, "
                            "which --quick needs too).")

    def fast_patch_runner(self, model):
        """A patching runner that recomputes only what a patch can change, or None (the full forward is used).

        ``model`` is the :class:`HookedAudioModel` holding this adapter."""
        return None

    # ------------------------------------------------------------------ readout (lenses)
    def final_norm(self, side: str) -> nn.Module | None:
        """The final norm applied before the unembedding on ``side`` (``encoder``, ``decoder``, ``llm``…),
        or None when the side has none."""
        return None

    def unembedding(self, side: str) -> torch.Tensor | None:
        """The ``[vocab, d_model]`` matrix that reads logits off ``side``'s final-normed residual, or None."""
        return None

    def readout(self, side: str):
        """``fn(resid [..., d_model]) -> logits [..., vocab]``: ``side``'s final norm (when it has one) and its
        unembedding (with its bias, if any), calling the HF modules; None when ``side`` has no readout."""
        return None
