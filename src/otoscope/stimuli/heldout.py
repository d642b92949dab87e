"""More held-out stimuli, so held-out rates are not decided by one clip.

Added to the held-out half of :func:`otoscope.stimuli.sets.speech_nonspeech_sets` only; nothing here is
ever fitted on. How fit and held-out stay apart:

- **speech**: only sentences of the held-out half of :data:`otoscope.stimuli.speech.SENTENCES` (the fit
  half uses the others; :func:`~otoscope.stimuli.sets.sentence_halves`, seed-dependent), the unused ones first, then repeats of held-out sentences in other voices/rates;
- **synthetic noise, known kinds**: more clips of the seven kinds, drawn from random streams seeded
  ``[seed, 1, 100 + j]`` (the fit half draws from ``[seed, 0]``);
- **synthetic noise, new kinds** (:data:`NEW_KINDS`): beeps, buzz, band-limited noise, amplitude-modulated
  noise, a tone over a noise bed. None of them is in the fit half at all;
- **animals**: variants (pitch shifted up and down, a half-length excerpt, looped over a quiet noise bed)
  of the held-out *animals* only, as chosen by :mod:`otoscope.stimuli.sets` (split by animal, seed-fixed).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from otoscope.audio.io import Clip
from otoscope.stimuli import noise, speech
from otoscope.stimuli.sets import Stimulus, StimulusSet, sentence_halves, speech_nonspeech_sets

SAMPLE_RATE = noise.SAMPLE_RATE  # Hz
EXTRA_VOICES = ("en-us+f2", "en-gb+m4", "en-029", "en-us+f4")  # voices never used in the fit half
PITCH_FACTORS = (1.26, 0.79)  # about +4 and −4 semitones (resampling: duration changes with pitch)
NOISE_BED_DB = -42.0  # pink noise under a looped animal clip, dBFS RMS


def beeps(rng, n):
    """Tone bursts (a phone or a machine): 100–300 ms beeps at 400–3000 Hz, regular gaps."""
    t = np.arange(n) / SAMPLE_RATE
    f = rng.uniform(400, 3000)
    on = rng.uniform(0.1, 0.3)
    period = on + rng.uniform(0.1, 0.4)
    return np.sin(2 * np.pi * f * t) * ((t % period) < on)


def buzz(rng, n):
    """A square or sawtooth buzz at 80–600 Hz (rich in harmonics, unlike a sine)."""
    t = np.arange(n) / SAMPLE_RATE
    phase = (t * rng.uniform(80, 600)) % 1.0
    return np.sign(phase - 0.5) if rng.random() < 0.5 else 2 * phase - 1


def band_noise(rng, n):
    """White noise kept only between two frequencies (an octave or two, 200 Hz – 6 kHz)."""
    lo = float(np.exp(rng.uniform(np.log(200), np.log(3000))))
    hi = min(7000.0, lo * rng.uniform(2, 4))
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum[(freqs < lo) | (freqs > hi)] = 0
    return np.fft.irfft(spectrum, n)


def modulated_noise(rng, n):
    """Pink noise whose loudness swells at 0.5–8 Hz (engine, waves, rain gusts)."""
    t = np.arange(n) / SAMPLE_RATE
    envelope = 1 + 0.9 * np.sin(2 * np.pi * rng.uniform(0.5, 8) * t + rng.uniform(0, 2 * np.pi))
    return noise.pink(rng, n) * envelope


def tone_in_noise(rng, n):
    """A steady tone over brown noise about 10 dB below it."""
    x = noise.tone(rng, n)
    bed = noise.brown(rng, n)
    return x / np.sqrt(np.mean(x**2)) + 0.3 * bed / np.sqrt(np.mean(bed**2))


NEW_KINDS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "beeps": beeps, "buzz": buzz, "band_noise": band_noise, "modulated_noise": modulated_noise,
    "tone_in_noise": tone_in_noise}


def _synth(generator, rng, seconds: float, level_db: float) -> np.ndarray:
    n = int(round(seconds * SAMPLE_RATE))
    ramp = min(n // 2, SAMPLE_RATE // 50)  # 20 ms fades, as noise.synth
    fade = np.ones(n)
    fade[:ramp] = np.linspace(0, 1, ramp)
    fade[n - ramp :] = np.linspace(1, 0, ramp)
    return noise._at_level(generator(rng, n) * fade, level_db)


def extra_noise(per_kind: int = 2, new_per_kind: int = 2, seed: int = 0) -> list[Stimulus]:
    """``per_kind`` more clips of each known kind and ``new_per_kind`` of each new kind, held out."""
    out = []
    kinds = [(k, noise.GENERATORS[k], per_kind) for k in noise.KINDS] + [(k, g, new_per_kind) for k, g in NEW_KINDS.items()]
    for kind, generator, count in kinds:
        for j in range(count):
            rng = np.random.default_rng([seed, 1, 100 + j, sum(map(ord, kind))])
            level = float(rng.uniform(-45, -12))
            seconds = float(rng.uniform(1.5, 4.0))
            out.append(Stimulus(Clip(_synth(generator, rng, seconds, level), SAMPLE_RATE, f"noise/heldout+/{kind}/{j}"),
                                "nonspeech", None, f"noise:{kind}"))
    return out


def pitch_shift(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play ``samples`` ``factor`` times faster (pitch × factor, duration ÷ factor), by resampling."""
    import soxr

    return soxr.resample(samples, SAMPLE_RATE * factor, SAMPLE_RATE, quality="HQ").astype(np.float32)


def animal_variants(seed: int = 0) -> list[Stimulus]:
    """Four variants of every held-out animal clip (never of a fit animal): pitch up, pitch down, the
    louder half as an excerpt, and the clip looped twice at half gain over a quiet pink-noise bed."""
    out = []
    held = speech_nonspeech_sets(n_speech=0, noise_per_kind=0, seed=seed).heldout  # the held-out animals, nothing else
    for stim in held:
        if not stim.clip.name.endswith("/1"):  # the 0.2-gain copy: vary the full-level clip only
            continue
        x, name = stim.clip.samples, stim.clip.name.rsplit("/", 1)[0].replace("animal/heldout/", "animal/heldout+/")
        half = len(x) // 2
        first, second = x[:half], x[half:]
        excerpt = first if np.mean(first**2) >= np.mean(second**2) else second
        rng = np.random.default_rng([seed, 1, 200, sum(map(ord, name))])
        looped = np.concatenate([x, x]) * 0.5
        looped = looped + noise.synth("pink", rng, len(looped) / SAMPLE_RATE, NOISE_BED_DB)
        variants = {"pitch_up": pitch_shift(x, PITCH_FACTORS[0]), "pitch_down": pitch_shift(x, PITCH_FACTORS[1]),
                    "excerpt": excerpt, "looped_noisy": looped}
        for label, samples in variants.items():
            out.append(Stimulus(Clip(np.asarray(samples, dtype=np.float32), SAMPLE_RATE, f"{name}/{label}"), "nonspeech",
                                None, stim.source))
    return out


def extra_speech(n_base: int, n_extra: int = 16, seed: int = 0) -> list[Stimulus]:
    """``n_extra`` more held-out speech clips: the held-out sentences the base set did not use (``n_base``
    were used), then held-out sentences again in voices the fit half never uses, at other rates."""
    held = sentence_halves(seed)[1]
    out = []
    for i in range(n_extra):
        j = n_base + i
        if j < len(held):
            sentence, voice, rate = held[j], speech.VOICES[(j + 3) % len(speech.VOICES)], (140, 160, 120)[j % 3]
        else:
            sentence = held[(j - len(held)) % len(held)]
            voice, rate = EXTRA_VOICES[i % len(EXTRA_VOICES)], (125, 155, 175)[i % 3]
        samples = speech.speak(sentence, voice, rate)
        out.append(Stimulus(Clip(samples, speech.SAMPLE_RATE, f"speech/heldout+/{voice}/{j}"), "speech", sentence,
                            f"espeak:{voice}"))
    return out


def study_sets(n_speech: int = 8, noise_per_kind: int = 1, seed: int = 0, extra_speech_clips: int = 16,
               extra_noise_per_kind: int = 2, new_noise_per_kind: int = 2, animal_variations: bool = True) -> StimulusSet:
    """The study's stimuli: :func:`speech_nonspeech_sets` with its held-out half enlarged as described above
    (the fit half unchanged). Defaults: 25 fit clips; 24 speech + 61 non-speech held out."""
    base = speech_nonspeech_sets(n_speech, noise_per_kind, seed)
    extra = extra_speech(min(n_speech, len(speech.SENTENCES) // 2), extra_speech_clips, seed) if extra_speech_clips else []
    extra += extra_noise(extra_noise_per_kind, new_noise_per_kind, seed)
    if animal_variations:
        extra += animal_variants(seed)
    return StimulusSet(base.fit, base.heldout + extra)

