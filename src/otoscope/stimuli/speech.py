"""Synthetic speech: espeak-ng speaking a text, with the time span of every word; sentences of our own.

* :func:`synthesize` — a text → :class:`Speech` (the clip and its word spans), from espeak-ng's library;
* :func:`speak` — a text → samples, from the ``espeak-ng`` program (the speech / non-speech sets);
* :data:`SENTENCES`, :data:`VOICES` — ordinary sentences of our own and English voices to say them in.

espeak-ng is a system program (``apt-get install espeak-ng``); nothing is downloaded. Its output is
resampled to 16 kHz, trimmed of leading/trailing silence and padded with 150 ms of silence each side.
"""

from __future__ import annotations

import io
import shutil
import subprocess

from dataclasses import dataclass

import numpy as np

from otoscope.audio.io import Clip
from otoscope.errors import OtoscopeError
from otoscope.stimuli.espeak import synth
from otoscope.stimuli.normalize import spell_out
from otoscope.stimuli.timing import word_samples
from otoscope.stimuli.words import WordSpan, tokens

SAMPLE_RATE = 16_000  # Hz
PAD_SECONDS = 0.15  # silence kept before and after the speech
_SILENCE_THRESHOLD = 1e-3  # |sample| below this (float scale) counts as silence when trimming

VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp", "en-us+m3", "en-gb-scotland")

SENTENCES = (
    "Please open the door.",
    "The weather is nice today.",
    "I would like a cup of coffee.",
    "The train leaves at seven.",
    "She reads a book every night.",
    "We walked along the river.",
    "The children are playing outside.",
    "Turn off the lights before you leave.",
    "My brother works in a bank.",
    "The market opens early on Sunday.",
    "He bought a new bicycle last week.",
    "Dinner will be ready in ten minutes.",
    "The library is closed for repairs.",
    "Can you call me tomorrow morning?",
    "The garden needs more water.",
    "They moved to a small town by the sea.",
    "The meeting starts after lunch.",
    "Put the keys on the kitchen table.",
    "It rained all day yesterday.",
    "The doctor will see you now.",
    "I forgot my umbrella at home.",
    "The bus was late again this morning.",
    "Her sister plays the violin.",
    "We need to buy bread and milk.",
    "The museum has a new exhibition.",
    "The cat is sleeping on the sofa.",
    "Write your name at the top of the page.",
    "The shop sells fresh fruit.",
    "Our flight was delayed by two hours.",
    "The teacher answered every question.",
    "The road is closed because of snow.",
    "He likes to swim in the lake.",
    "The phone rang during the film.",
    "Bring a warm coat for the trip.",
    "The river flows into the ocean.",
    "I will send you the letter next week.",
    "The baby is smiling at her mother.",
    "Please speak a little more slowly.",
    "The apples on that tree are ripe.",
    "We watched the sunset from the hill.",
)


@dataclass
class Speech:
    """A synthesised utterance."""

    clip: Clip
    """Mono float32 audio at the requested rate."""
    words: list[WordSpan]
    """Word spans in seconds, in order: one per word of ``text``."""
    text: str
    """The text spoken: the text given with numbers and symbols spelled out (:func:`spell_out`)."""
    voice: str
    """espeak-ng voice (``en-us``, ``en-gb+f3``, ...)."""
    written: str = ""
    """The text as given, before spelling out."""
    speed: int = 130
    """Words per minute."""
    pitch: int = 50
    """espeak-ng pitch, 0–99."""


def synthesize(text: str, voice: str = "en-us", speed: int = 130, pitch: int = 50, sample_rate: int = SAMPLE_RATE,
               pad: float = PAD_SECONDS) -> Speech:
    """Speak ``text`` with espeak-ng → a :class:`Speech` with the clip and one span per word.

    Numbers and symbols are spelled out first (``3`` → ``three``, ``%`` → ``percent``). ``speed`` is in
    words per minute, ``pitch`` 0–99. Audio is resampled (soxr) to ``sample_rate``, trimmed of silence
    and padded with ``pad`` seconds of silence on each side. Word spans come from espeak-ng's word and
    phoneme events (:mod:`otoscope.stimuli.timing`), so any sentence of ordinary words has them.
    """
    import soxr

    spoken = spell_out(text)
    words = tokens(spoken)
    if not words:
        raise OtoscopeError(f"nothing to synthesise: {text!r} has no words; pass a sentence.")
    rendering = synth(spoken, voice, speed, pitch, sorted({w.word for w in words}))
    audio, engine_rate = rendering.audio, rendering.rate
    loud = np.flatnonzero(np.abs(audio) > _SILENCE_THRESHOLD)
    first, last = (int(loud[0]), int(loud[-1]) + 1) if loud.size else (0, len(audio))
    spans = word_samples(rendering.events, words, last, rendering.phonemes.__getitem__)
    speech = audio[first:last]
    if engine_rate != sample_rate:
        speech = soxr.resample(speech, engine_rate, sample_rate, quality="HQ").astype(np.float32)
    silence = np.zeros(int(round(pad * sample_rate)), dtype=np.float32)
    samples = np.concatenate([silence, speech, silence])
    seconds = lambda sample: round(pad + (max(sample, first) - first) / engine_rate, 4)  # noqa: E731
    out = [WordSpan(w.word, seconds(a), seconds(b)) for w, (a, b) in zip(words, spans)]
    name = f"espeak-ng:{voice}:{spoken}"
    return Speech(Clip(np.ascontiguousarray(samples), sample_rate, name), out, spoken, voice, text, speed, pitch)


def have_espeak() -> bool:
    """True when the ``espeak-ng`` program is on the PATH."""
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str = "en-us", words_per_minute: int = 140) -> np.ndarray:
    """``text`` spoken by espeak-ng → ``[samples]`` float32 at 16 kHz, silence-trimmed and padded."""
    import soundfile as sf
    import soxr

    if not have_espeak():
        raise OtoscopeError("espeak-ng is not installed; install it (apt-get install espeak-ng) to synthesise speech.")
    run = subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text],
                         capture_output=True, check=False)
    if run.returncode != 0 or not run.stdout:
        raise OtoscopeError(f"espeak-ng failed for voice '{voice}': {run.stderr.decode(errors='replace').strip()}")
    data, rate = sf.read(io.BytesIO(run.stdout), dtype="float32")
    samples = soxr.resample(data, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    loud = np.nonzero(np.abs(samples) > 1e-3)[0]
    if loud.size:
        samples = samples[loud[0] : loud[-1] + 1]
    pad = np.zeros(int(PAD_SECONDS * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([pad, samples, pad])
