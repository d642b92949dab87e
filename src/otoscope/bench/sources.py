"""The stimulus generators the benchmark builds on, imported in one place.

Everything the tasks synthesise goes through these names, so moving the generators (to
``otoscope.stimuli``, with robust word spans and spliced minimal pairs) changes only the imports below.
"""

from __future__ import annotations

from otoscope.stimuli.degrade import add_noise
from otoscope.stimuli.pairs import MinimalPair
from otoscope.stimuli.swaps import word_swap
from otoscope.stimuli.espeak import espeak_available
from otoscope.stimuli.speech import Speech, synthesize
from otoscope.stimuli.words import WordSpan
from otoscope.stimuli.noise import KINDS as NOISE_KINDS
from otoscope.stimuli.noise import synth as synth_noise

SAMPLE_RATE = 16_000  # Hz: every clip of the benchmark
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+m7")
"""espeak-ng voices the speech tasks cycle through (language + variant)."""

__all__ = ["MinimalPair", "NOISE_KINDS", "SAMPLE_RATE", "Speech", "VOICES", "WordSpan", "add_noise",
           "espeak_available", "synth_noise", "synthesize", "word_swap"]
