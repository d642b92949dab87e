"""Task 5, speech vs non-speech: a spoken sentence against a non-speech clip of the same length.

Metric: the log-odds that the clip is speech at ``<|startoftranscript|>`` (Whisper's no-speech
probability, ``log(1 − p) − log p``). Which encoder cells, patched from the speech run, make the decoder
believe there is speech? Expected region: the speech (first word's start to last word's end).
Non-speech: the synthetic kinds of :mod:`otoscope.stimuli.noise` at varied levels.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from otoscope.audio.io import Clip
from otoscope.bench import sources
from otoscope.bench.pair import BenchPair
from otoscope.bench.tasks.base import Task

LEVELS_DB = (-30.0, -20.0)  # RMS dBFS of the non-speech clips (espeak-ng speech is about -20 dBFS)


def nonspeech_pair(pair_id: str, speech: Clip, nonspeech: np.ndarray, region, details: dict) -> BenchPair:
    """Speech (clean) against ``nonspeech`` samples cut or padded to its length (corrupt)."""
    n = len(speech.samples)
    samples = np.zeros(n, np.float32)
    samples[: min(n, len(nonspeech))] = nonspeech[:n]
    corrupt = Clip(samples, speech.sample_rate, details.get("nonspeech", "nonspeech"))
    return BenchPair(pair_id, "nonspeech", speech, corrupt, "speech_odds", region=region, details=details)


def generate(seed: int) -> Iterator[BenchPair]:
    """Candidate pairs: sentences in several voices against the noise kinds in turn, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    for i, text, voice, speech in sources.spoken_sentences(rng):
        kind = sources.NOISE_KINDS[i % len(sources.NOISE_KINDS)]
        level = float(LEVELS_DB[int(rng.integers(len(LEVELS_DB)))])
        noise = sources.synth_noise(kind, rng, speech.clip.seconds, level)
        region = (speech.words[0].start, speech.words[-1].end)
        yield nonspeech_pair(f"nonspeech-{i:03d}", speech.clip, noise, region,
                             {"text": text, "voice": voice, "nonspeech": f"noise:{kind}@{level:g}dBFS"})


TASK = Task("nonspeech", "Speech vs non-speech", "Where does Whisper decide that a clip holds speech?", "whisper",
            ("denoising",), "encoder.blocks.*.hook_resid_post", generate)
