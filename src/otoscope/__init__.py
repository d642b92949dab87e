"""Otoscope: mechanistic interpretability for audio and speech models.

Axis names used in shapes throughout the package:

- ``samples``: waveform samples at the model's rate (16 kHz)
- ``mels``: log-mel channels (Whisper: 80 or 128); mel frames are 10 ms apart
- ``frames``: encoder time steps (20 ms apart: 50 per second); Whisper always has 1500, of which only
  the first ``ceil(mel_frames / 2)`` are real audio; see :mod:`otoscope.audio.frames`
- ``tokens``: decoder positions (task prefix + text)
- ``heads``, ``d_head``: attention heads and their width; ``d_model``: residual width; ``d_mlp``: MLP width
- ``vocab``: output vocabulary; ``d_sae``: sparse-autoencoder latents

Quick start::

    import otoscope
    model = otoscope.load()                      # whisper-tiny.en from bundled weights, offline
    logits, cache = model.run_with_cache("clip.flac", names_filter="encoder.blocks.*.hook_resid_post")
    cache["encoder.blocks.3.hook_resid_post"]    # [batch, frames, d_model]
"""

from typing import TYPE_CHECKING

from otoscope._lazy import lazy_exports

__version__ = "0.1.0"

# Public names load on first use (torch and transformers are slow to import; ``otoscope --help`` must not wait).
_EXPORTS = {
    "Clip": "otoscope.audio.io", "FrameGeometry": "otoscope.audio.frames",
    "AudioError": "otoscope.errors", "HookNameError": "otoscope.errors", "ModelNotFoundError": "otoscope.errors",
    "OtoscopeError": "otoscope.errors",
    "ActivationCache": "otoscope.hooks.cache", "HookPoint": "otoscope.hooks.points",
    "HookedAudioModel": "otoscope.models.hooked", "load": "otoscope.models.loader",
    "Transcription": "otoscope.models.decode", "list_models": "otoscope.models.registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for editors and type checkers: the same names, imported eagerly
    from otoscope.audio import Clip, FrameGeometry
    from otoscope.errors import AudioError, HookNameError, ModelNotFoundError, OtoscopeError
    from otoscope.hooks import ActivationCache, HookPoint
    from otoscope.models import HookedAudioModel, Transcription, list_models, load

__all__ = ["ActivationCache", "AudioError", "Clip", "FrameGeometry", "HookNameError", "HookPoint", "HookedAudioModel",
           "ModelNotFoundError", "OtoscopeError", "Transcription", "list_models", "load", "__version__"]
