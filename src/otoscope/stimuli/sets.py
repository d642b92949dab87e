"""A labelled speech / non-speech stimulus set, split into fit and held-out halves with fixed seeds.

Speech: the sentences of :mod:`otoscope.stimuli.speech` (first half fit, second half held out; another
half for seeds other than 0: :func:`sentence_halves`), voices
and speaking rates cycled. Non-speech: every synthetic kind of :mod:`otoscope.stimuli.noise` at varied
levels and lengths (different seeds per split), and the bundled animal clips split by animal (no
animal is in both halves), each at two levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from otoscope.audio.io import Clip, read_file
from otoscope.stimuli import noise, speech
from otoscope.stimuli.animals import animal_clips

SPLITS = ("fit", "heldout")


@dataclass
class Stimulus:
    """One clip with its label."""

    clip: Clip
    """The audio (16 kHz); ``clip.name`` is a readable id such as ``speech/en-gb/12``."""
    kind: str
    """``speech`` or ``nonspeech``."""
    text: str | None
    """The spoken sentence (speech), else None."""
    source: str
    """What made it: ``espeak:en-gb``, ``noise:pink``, ``animal:dog``."""


@dataclass
class StimulusSet:
    """Fit and held-out stimuli."""

    fit: list[Stimulus] = field(default_factory=list)
    """Used to choose directions, layers, thresholds and strengths."""
    heldout: list[Stimulus] = field(default_factory=list)
    """Used only to report figures."""

    def split(self, name: str) -> list[Stimulus]:
        """``fit`` or ``heldout``."""
        if name not in SPLITS:
            raise ValueError(f"unknown split '{name}'; use one of {SPLITS}.")
        return getattr(self, name)


def sentence_halves(seed: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(fit, held-out) halves of :data:`otoscope.stimuli.speech.SENTENCES`: the first half and the second for
    seed 0 (the study's published split), a seeded random half otherwise (a fresh split of the sentences)."""
    order = list(speech.SENTENCES)
    if seed:
        order = [order[i] for i in np.random.default_rng([seed, 7]).permutation(len(order))]
    half = len(order) // 2
    return tuple(order[:half]), tuple(order[half:])


def _speech(split: str, n: int, seed: int = 0) -> list[Stimulus]:
    fit, held = sentence_halves(seed)
    sentences = fit if split == "fit" else held
    out = []
    for i in range(min(n, len(sentences))):
        voice = speech.VOICES[(i + (split == "heldout")) % len(speech.VOICES)]
        rate = (130, 150, 170)[i % 3]
        samples = speech.speak(sentences[i], voice, rate)
        out.append(Stimulus(Clip(samples, speech.SAMPLE_RATE, f"speech/{split}/{voice}/{i}"), "speech",
                            sentences[i], f"espeak:{voice}"))
    return out


def _noise(split: str, per_kind: int, seed: int) -> list[Stimulus]:
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    out = []
    for kind in noise.KINDS:
        for j in range(per_kind):
            level = float(rng.uniform(-45, -12))
            seconds = float(rng.uniform(1.5, 4.0))
            samples = noise.synth(kind, rng, seconds, level)
            out.append(Stimulus(Clip(samples, noise.SAMPLE_RATE, f"noise/{split}/{kind}/{j}"), "nonspeech", None,
                                f"noise:{kind}"))
    return out


def _animals(split: str, seed: int) -> list[Stimulus]:
    clips = animal_clips()
    names = sorted(clips)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    mine = order[: len(order) // 2] if split == "fit" else order[len(order) // 2 :]
    out = []
    for name in sorted(mine):
        clip = read_file(clips[name], speech.SAMPLE_RATE)
        for gain in (1.0, 0.2):
            out.append(Stimulus(Clip((clip.samples * gain).astype(np.float32), clip.sample_rate,
                                     f"animal/{split}/{name}/{gain:g}"), "nonspeech", None, f"animal:{name}"))
    return out


def speech_nonspeech_sets(n_speech: int = 20, noise_per_kind: int = 3, seed: int = 0,
                          animals: bool = True) -> StimulusSet:
    """Build the fit and held-out sets: ``n_speech`` sentences and ``noise_per_kind × 7`` noises per split,
    plus half the animal clips (at two levels) per split. Deterministic for a given ``seed``."""
    result = StimulusSet()
    for split in SPLITS:
        items = _speech(split, n_speech, seed) + _noise(split, noise_per_kind, seed)
        if animals:
            items += _animals(split, seed)
        setattr(result, split, items)
    return result
