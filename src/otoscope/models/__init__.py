"""Loading audio models and wrapping them with hook points."""

from otoscope.models.decode import Transcription
from otoscope.models.hooked import HookedAudioModel, HookInfo, load
from otoscope.models.registry import DEFAULT_MODEL, KNOWN_MODELS, list_models, resolve
from otoscope.models.safeguards import RepetitionGuard, SpeechGates

__all__ = ["DEFAULT_MODEL", "HookInfo", "HookedAudioModel", "KNOWN_MODELS", "RepetitionGuard", "SpeechGates",
           "Transcription", "list_models", "load", "resolve"]
