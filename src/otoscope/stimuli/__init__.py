"""Stimuli: inputs generated or shipped by the project, apart from the analyses that use them.

- :mod:`otoscope.stimuli.speech`: sentences spoken by espeak-ng in several voices.
- :mod:`otoscope.stimuli.noise`: synthetic non-speech (coloured noise, tones, chirps, clicks, hum).
- :mod:`otoscope.stimuli.animals`: CC0 animal sounds bundled with the package.
- :mod:`otoscope.stimuli.sets`: a labelled speech / non-speech set split into fit and held-out halves.
"""

from otoscope.stimuli.sets import Stimulus, StimulusSet, speech_nonspeech_sets

__all__ = ["Stimulus", "StimulusSet", "speech_nonspeech_sets"]
