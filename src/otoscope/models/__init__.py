"""Loading audio models and wrapping them with hook points."""

from typing import TYPE_CHECKING

from otoscope._lazy import lazy_exports

# loaded on first use, so that the registry (names, no torch) serves ``otoscope --help`` instantly
__getattr__, __dir__ = lazy_exports(__name__, {
    "Transcription": ".decode", "HookedAudioModel": ".hooked", "HookInfo": ".hooked", "load": ".loader",
    "DEFAULT_MODEL": ".registry", "KNOWN_MODELS": ".registry", "list_models": ".registry", "resolve": ".registry",
    "RepetitionGuard": ".safeguards", "SpeechGates": ".safeguards"})

if TYPE_CHECKING:
    from otoscope.models.decode import Transcription
    from otoscope.models.hooked import HookedAudioModel, HookInfo
    from otoscope.models.loader import load
    from otoscope.models.registry import DEFAULT_MODEL, KNOWN_MODELS, list_models, resolve
    from otoscope.models.safeguards import RepetitionGuard, SpeechGates

__all__ = ["DEFAULT_MODEL", "HookInfo", "HookedAudioModel", "KNOWN_MODELS", "RepetitionGuard", "SpeechGates",
           "Transcription", "list_models", "load", "resolve"]
