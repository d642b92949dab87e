"""Task 3, noise robustness: a sentence against the same sentence in white noise at 0 dB SNR.

Metric: the log-probability of the clean transcript (teacher-forced, all its tokens). Which encoder
cells, patched clean, give the transcript back? There is no single expected region (the noise covers
the whole clip); the leaderboard reports the share inside the speech.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from otoscope.bench import sources
from otoscope.bench.pair import BenchPair
from otoscope.bench.tasks.base import Task

SNR_DB = 0.0  # signal-to-noise ratio of the corrupt clip


def generate(seed: int) -> Iterator[BenchPair]:
    """Candidate noise pairs: the project's sentences in several voices, noise drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    for i, text, voice, speech in sources.spoken_sentences(rng):
        noise_seed = int(rng.integers(2**31))
        made = sources.add_noise(speech, SNR_DB, noise="white", seed=noise_seed)
        region = (speech.words[0].start, speech.words[-1].end)
        yield BenchPair(f"noise-{i:03d}", "noise", made.clean, made.corrupt, "logprob", None, None, " " + text, None,
                        region, {"text": text, "voice": voice, "snr_db": SNR_DB, "noise": "white", "seed": noise_seed})


TASK = Task("noise", "Noise robustness", "Which encoder cells carry the transcript through noise?", "whisper",
            ("denoising",), "encoder.blocks.*.hook_resid_post", generate)
