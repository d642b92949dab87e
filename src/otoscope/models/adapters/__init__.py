"""One architecture adapter per model family; :func:`adapter_for` picks the one that matches a HF model.

Adding a family: write ``adapters/<family>.py`` with an :class:`Adapter` subclass and add it to
:data:`ADAPTERS` (docs/hooks.md, "Adding a model family").
"""

from __future__ import annotations

from torch import nn

from otoscope.models.adapters.base import Adapter
from otoscope.models.adapters.ctc import CTCAdapter
from otoscope.models.adapters.musicgen import MusicgenAdapter
from otoscope.models.adapters.whisper import WhisperAdapter

ADAPTERS: list[type[Adapter]] = [WhisperAdapter, CTCAdapter, MusicgenAdapter]
"""Every adapter, tried in order: the first whose :meth:`Adapter.matches` is True wins."""


def adapter_for(hf_model: nn.Module, feature_extractor=None, tokenizer=None) -> Adapter:
    """The adapter of ``hf_model``'s family. Unsupported classes raise NotImplementedError naming the class."""
    for cls in ADAPTERS:
        if cls.matches(hf_model):
            return cls(hf_model, feature_extractor, tokenizer)
    supported = "; ".join(cls.supports or cls.family for cls in ADAPTERS)
    raise NotImplementedError(f"otoscope has no adapter for {type(hf_model).__name__}; supported: {supported}. "
                              "A new family needs an adapter in otoscope/models/adapters (docs/hooks.md).")


__all__ = ["ADAPTERS", "Adapter", "CTCAdapter", "MusicgenAdapter", "WhisperAdapter", "adapter_for"]
