"""Steering and ablation: add or project out directions, edit SAE latents, and silence non-speech.

- :mod:`~otoscope.steer.direction`: :class:`Direction` / :class:`Gate` and the saved folder format.
- :mod:`~otoscope.steer.apply`: the :func:`steering` context manager.
- :mod:`~otoscope.steer.gate`: scoring clips/frames inside the forward pass (real frames only).
- :mod:`~otoscope.steer.latents`: :func:`edit_latents` (zero / scale / clamp SAE latents, error term kept).
- :mod:`~otoscope.steer.fit`: difference-of-means directions, layer choice by probe accuracy.
- :mod:`~otoscope.steer.silence`: choosing an intervention that empties non-speech transcripts.
- :mod:`~otoscope.steer.study`: the non-speech hallucination study.
"""

from otoscope.steer.apply import steering
from otoscope.steer.direction import Direction, Gate
from otoscope.steer.fit import fit_direction
from otoscope.steer.latents import LatentEdit, edit_latents

__all__ = ["Direction", "Gate", "LatentEdit", "edit_latents", "fit_direction", "steering"]
