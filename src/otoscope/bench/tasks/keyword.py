"""Task 2, keyword spotting: one command word against another, same voice; metric on the first answer token.

The ten Speech Commands words, spoken alone by espeak-ng in several voices. The metric is
logit(first token of the clean word) − logit(first token of the other word) at the first text position
(Whisper writes a lone command capitalised: " Yes"). Expected region: the word itself.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from otoscope.bench import sources
from otoscope.bench.pair import BenchPair, equal_length
from otoscope.bench.tasks.base import Task

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def keyword_pair(pair_id: str, clean, corrupt, word: str, other: str, region, details: dict) -> BenchPair:
    """A keyword pair in the benchmark format (used by the generator and the dataset loaders)."""
    clean, corrupt = equal_length(clean, corrupt)
    return BenchPair(pair_id, "keyword", clean, corrupt, "logit_diff", None, None, " " + word.capitalize(),
                     " " + other.capitalize(), region, details)


def generate(seed: int) -> Iterator[BenchPair]:
    """Candidate keyword pairs: two different keywords in one voice, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    i = 0
    while True:
        word, other = (str(w) for w in rng.choice(KEYWORDS, size=2, replace=False))
        voice = sources.VOICES[int(rng.integers(len(sources.VOICES)))]
        a, b = sources.synthesize(word.capitalize() + ".", voice), sources.synthesize(other.capitalize() + ".", voice)
        region = (a.words[0].start, a.words[-1].end)
        yield keyword_pair(f"keyword-{i:03d}", a.clip, b.clip, word, other, region,
                           {"word": word, "other": other, "voice": voice, "source": "espeak-ng"})
        i += 1


TASK = Task("keyword", "Keyword spotting", "Where does the encoder tell one command word from another?", "whisper",
            ("denoising",), "encoder.blocks.*.hook_resid_post", generate)
