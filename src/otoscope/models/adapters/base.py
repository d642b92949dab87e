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

if TYPE_CHECKING:  # typing only: keeps this module's import cheap
    from otoscope.audio.frames import FrameGeometry
    from otoscope.audio.io import Clip
    from otoscope.hooks.points import HookPoint
    from otoscope.models.inputs import ModelInputs


class Adapter(ABC):
    """What one model family looks like to otoscope. Subclasses wrap, never re-implement, the HF model."""

    family: ClassVar[str]
    """Short family name shown to users: ``whisper``, ``ctc``, ``audio-llm``, ``musicgen``."""

    def __init__(self, hf_model: nn.Module, feature_extractor=None, tokenizer=None):
        self.model = hf_model
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer

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

    # ------------------------------------------------------------------ inputs and forward
    @abstractmethod
    def prepare(self, clips: list["Clip"], text=None, *, tokens=None, prompt=None,
                language: str | None = "en") -> "ModelInputs":
        """Model inputs for a batch of clips (plus teacher-forced text where the family takes it).
        Families that take no text raise :class:`~otoscope.errors.OtoscopeError` when given some."""

    @abstractmethod
    def forward(self, inputs: "ModelInputs") -> torch.Tensor:
        """Run the HF model on prepared inputs → its logits (or last hidden state for bare encoders)."""

    # ------------------------------------------------------------------ readout (lenses)
    def final_norm(self, side: str) -> nn.Module | None:
        """The final norm applied before the unembedding on ``side`` (``encoder``, ``decoder``, ``llm``…),
        or None when the side has none."""
        return None

    def unembedding(self, side: str) -> torch.Tensor | None:
        """The ``[vocab, d_model]`` matrix that reads logits off ``side``'s final-normed residual, or None."""
        return None
