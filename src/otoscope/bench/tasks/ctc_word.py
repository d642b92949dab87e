"""Task 6, encoder-only CTC word identity: the word swaps of task 1 scored on a CTC model's characters.

Metric: inside the swapped word's span, each character's best log-probability over the span's frames,
averaged over the clean word's characters, minus the same for the corrupt word (see
:func:`otoscope.bench.metrics.ctc_chars_metric`). Applies to wav2vec2, HuBERT and WavLM CTC models.
"""

from __future__ import annotations

from typing import Iterator

from otoscope.bench.pair import BenchPair
from otoscope.bench.tasks import asr_word
from otoscope.bench.tasks.base import Task


def generate(seed: int) -> Iterator[BenchPair]:
    """Task 1's candidates (same seed, same pairs), re-labelled for the CTC metric."""
    for pair in asr_word.generate(seed):
        yield BenchPair(pair.id.replace("asr-word", "ctc-word"), "ctc-word", pair.clean, pair.corrupt, "ctc_chars",
                        None, None, pair.answer.strip(), pair.wrong.strip(), pair.region, pair.details)


TASK = Task("ctc-word", "CTC word identity (encoder-only)", "Where does a CTC encoder carry a word's letters?", "ctc",
            ("denoising",), "encoder.blocks.*.hook_resid_post", generate)
