"""Task 1, ASR word identity: one word of a sentence swapped, several voices, denoising and noising.

Where in the encoder does the identity of the word live? The expected region is the swapped word's
span; the metric is logit(clean word) − logit(swapped word) at the word's position, the words before it
teacher-forced.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from otoscope.bench import sources
from otoscope.bench.pair import BenchPair
from otoscope.bench.tasks.base import Task

# (sentence with a {} slot, words that fit it): every word one Whisper token with its leading space
TEMPLATES = (
    ("My name is John and I live in {}.", ("London", "Paris", "Berlin", "Madrid", "Tokyo", "Boston", "Dublin", "Moscow")),
    ("She bought a new {} last week.", ("car", "hat", "bag", "book", "coat", "chair", "house", "phone")),
    ("Please put the {} on the kitchen table.", ("cup", "box", "pen", "bread", "milk", "ball", "fish", "apple")),
    ("We will meet again next {} morning.", ("Monday", "Tuesday", "Friday", "Sunday", "Thursday", "Saturday")),
    ("The old {} was sleeping in the garden.", ("cat", "dog", "horse", "man", "bird", "woman", "goat", "pig")),
    ("He painted the front door {} yesterday.", ("red", "blue", "green", "black", "white", "yellow", "brown")),
)


def generate(seed: int) -> Iterator[BenchPair]:
    """Candidate word-swap pairs: templates, word pairs and voices drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    swap = lambda template, old, new, voice: sources.word_swap(template.format(old), old, new, voice=voice)  # noqa: E731
    for i, template, old, new, voice, made in sources.template_pairs(rng, TEMPLATES, swap):
        text = template.format(old)
        span = made.details["span"]
        yield BenchPair(f"asr-word-{i:03d}", "asr-word", made.clean, made.corrupt, "logit_diff", made.text,
                        None, made.answer, made.wrong, (float(span[0]), float(span[1])),
                        {"clean_text": text, "corrupt_text": made.details["corrupt_text"], "voice": voice,
                         "alignment": made.alignment})


TASK = Task("asr-word", "ASR word identity", "Where is the identity of a spoken word carried?", "whisper",
            ("denoising", "noising"), "encoder.blocks.*.hook_resid_post", generate)
