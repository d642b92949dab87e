"""Steering and ablation: add or project out directions, edit SAE latents, and silence non-speech.

- :mod:`~otoscope.steer.direction`: :class:`Direction` / :class:`Gate` and the saved folder format.
- :mod:`~otoscope.steer.apply`: the :func:`steering` context manager.
- :mod:`~otoscope.steer.gate`: scoring clips/frames inside the forward pass (real frames only).
- :mod:`~otoscope.steer.latents`: :func:`edit_latents` (zero / scale / clamp SAE latents, error term kept).
- :mod:`~otoscope.steer.latent_steer`: :class:`LatentGate` (a gate on SAE latents), :class:`LatentSteer`
  (clamping latents, optionally gated) and their saved form (the SAE inside the folder, checksummed).
- :mod:`~otoscope.steer.saved`: :func:`load_steering` (any steering folder) and :func:`applied`.
- :mod:`~otoscope.steer.fit`: difference-of-means directions, layer choice by probe accuracy.
- :mod:`~otoscope.steer.sae_fit`: small per-layer SAEs for steering, trained on the fit clips.
- :mod:`~otoscope.steer.nonspeech_latents`: latent selectivity for non-speech, latent gates.
- :mod:`~otoscope.steer.silence`: choosing an intervention that empties non-speech transcripts.
- :mod:`~otoscope.steer.study` (+ ``study_latents``, ``study_report``, ``intervals``): the non-speech
  hallucination study.
"""

from otoscope.steer.apply import steering
from otoscope.steer.direction import Direction, Gate
from otoscope.steer.fit import fit_direction
from otoscope.steer.latent_steer import LatentGate, LatentSteer, latent_steering
from otoscope.steer.latents import LatentEdit, edit_latents
from otoscope.steer.saved import applied, load_steering

__all__ = ["Direction", "Gate", "LatentEdit", "LatentGate", "LatentSteer", "applied", "edit_latents", "fit_direction",
           "latent_steering", "load_steering", "steering"]
