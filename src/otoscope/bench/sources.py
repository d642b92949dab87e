"""The stimulus generators the benchmark builds on, imported in one place.

Everything the tasks synthesise goes through these names, so moving the generators (to
``otoscope.stimuli``, with robust word spans and spliced minimal pairs) changes only the imports below.
"""

from __future__ import annotations

from typing import Iterator

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


def candidates(draw, make) -> "Iterator[tuple[int, tuple, object]]":
    """``(i, drawn, made)`` endlessly, for i = 0, 1, …: ``drawn = draw(i)`` (a tuple), ``made = make(*drawn)``;
    a candidate espeak-ng cannot give word spans for (``make`` raises OtoscopeError) is skipped, its index too."""
    from otoscope.errors import OtoscopeError

    i = 0
    while True:
        drawn = draw(i)
        try:
            made = make(*drawn)
        except OtoscopeError:  # no word spans for this sentence: the next candidate
            i += 1
            continue
        yield i, drawn, made
        i += 1


def spoken_sentences(rng) -> "Iterator[tuple[int, str, str, Speech]]":
    """``(i, text, voice, speech)`` endlessly: the project's sentences in ``rng``'s order, each in a voice drawn
    from ``rng``; a sentence espeak-ng cannot give word spans for is skipped (its index ``i`` too)."""
    from otoscope.stimuli.speech import SENTENCES

    order = rng.permutation(len(SENTENCES))

    def draw(i):
        return SENTENCES[int(order[i % len(order)])], VOICES[int(rng.integers(len(VOICES)))]

    for i, (text, voice), speech in candidates(draw, synthesize):
        yield i, text, voice, speech


def template_pairs(rng, templates, make) -> "Iterator[tuple[int, str, str, str, str, object]]":
    """``(i, template, a, b, voice, made)`` endlessly: template ``i`` (cycling), two different words of its list and
    a voice drawn from ``rng``, ``made = make(template, a, b, voice)``; candidates ``make`` refuses are skipped."""
    def draw(i):
        template, words = templates[i % len(templates)]
        a, b = (str(w) for w in rng.choice(words, size=2, replace=False))
        return template, a, b, VOICES[int(rng.integers(len(VOICES)))]

    for i, drawn, made in candidates(draw, make):
        yield (i, *drawn, made)
