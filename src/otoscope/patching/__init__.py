"""Activation patching for audio models: denoising and noising, exact and attribution, audio minimal pairs.

* :func:`patch` — one sweep of a clean/corrupt pair → :class:`PatchResult` (``.to_frame()``, ``.save(dir)``)
* :func:`open_session` (a :class:`PairConfig`) + :func:`sweep` (a :class:`SweepConfig`) — several sweeps
  reusing the cached clean and corrupt runs; :class:`PatchConfig` is both, for :func:`patch`
* :data:`METHODS` — every localization method by name (exact, attribution, IG, AtP*, two-point, hybrid, random),
  and :func:`score_method` — how well one tracks exact patching
* :func:`grounding_coefficient` — does the decoder listen (cross-attention) or guess (its text context)?
* minimal pairs that change one factor (a word, the voice, noise, a span) come from :mod:`otoscope.stimuli`

Directions: *denoising* writes clean activations into the corrupt run (is this enough to restore the
clean behaviour?), *noising* writes corrupt activations into the clean run (is it needed?). Scores are
always reported raw and normalised, ``(patched − corrupt) / (clean − corrupt)``.
"""

from typing import TYPE_CHECKING

from otoscope._lazy import lazy_exports

# loaded on first use, so that ``otoscope patch --help`` reads the config's choices without importing torch
__getattr__, __dir__ = lazy_exports(__name__, {
    "open_session": ".api", "patch": ".api", "sweep": ".api", "Cell": ".cells", "PairConfig": ".config",
    "PatchConfig": ".config", "SweepConfig": ".config", "METHODS": ".methods", "MethodScores": ".scores",
    "score_method": ".scores", "GroundingResult": ".grounding", "grounding_coefficient": ".grounding", "Agreement": ".result",
    "CellResult": ".result", "PatchResult": ".result", "agreement": ".result", "PatchSession": ".session"})

if TYPE_CHECKING:
    from otoscope.patching.api import open_session, patch, sweep
    from otoscope.patching.cells import Cell
    from otoscope.patching.config import PairConfig, PatchConfig, SweepConfig
    from otoscope.patching.grounding import GroundingResult, grounding_coefficient
    from otoscope.patching.methods import METHODS
    from otoscope.patching.result import Agreement, CellResult, PatchResult, agreement
    from otoscope.patching.scores import MethodScores, score_method
    from otoscope.patching.session import PatchSession

__all__ = ["METHODS", "Agreement", "Cell", "CellResult", "GroundingResult", "MethodScores", "PairConfig", "PatchConfig",
           "PatchResult", "PatchSession", "SweepConfig", "agreement", "grounding_coefficient", "open_session", "patch",
           "score_method", "sweep"]
