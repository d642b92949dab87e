"""Synthetic speech: sentences of our own spoken by espeak-ng in several English voices.

espeak-ng is a system program (``apt-get install espeak-ng``); nothing is downloaded. Its output is
resampled to 16 kHz, trimmed of leading/trailing silence and padded with 150 ms of silence each side.
"""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np

from otoscope.errors import OtoscopeError

SAMPLE_RATE = 16_000  # Hz
PAD_SECONDS = 0.15  # silence kept before and after the speech

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
