"""Task 4, text context vs audio: which pathway carries a word, the audio or the decoder's prompt?

Clean: a sentence with word X (``word_swap``'s spliced minimal pair, so only the word's span differs), decoded
after a previous-text prompt that says X; corrupt: the same sentence with Y spliced in, after a prompt that
says Y. The audio and the prompt change together, so both of the decoder's pathways carry the contrast, in
the same direction: the audio through cross-attention, the prompt through self-attention. Metric:
logit(X) − logit(Y) at the word's position, the words before it teacher-forced. The methods sweep the decoder's
residual stream per token (cells are decoder positions: no expected region in seconds; the word's span is in
the details), and the grounding coefficient per decoder layer, gc = Δaudio / (Δaudio + Δtext), is the share
of the contrast that arrives by listening at that layer (1) rather than from the prompt (0).

Why not "the prompt says Y, the audio says X" in one run against a run where they agree: then the two
pathways push opposite ways (the text pathway's effect is negative by construction) and gc, a share, is
undefined at most layers — what the first version of this task (prompt X against prompt Y over the same
audio) measured: the cross-attention output then changes only through its queries, mostly the wrong way.
Pairs whose clean run does not say X, or whose runs score alike, are dropped at build and counted.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from otoscope.bench import sources
from otoscope.bench.pair import BenchPair
from otoscope.bench.tasks.asr_word import TEMPLATES
from otoscope.bench.tasks.base import Task


def generate(seed: int) -> Iterator[BenchPair]:
    """Candidate pairs: a template spoken with X after a prompt with X (clean), with Y after a prompt with Y."""
    rng = np.random.default_rng(seed + 4)  # not task 1's stream: other sentences, words and voices
    swap = lambda template, said, other, voice: sources.word_swap(template.format(said), said, other, voice=voice)  # noqa: E731
    for i, template, said, other, voice, made in sources.template_pairs(rng, TEMPLATES, swap):
        span = made.details["span"]
        prompt = (template.format(said), template.format(other))
        yield BenchPair(f"context-{i:03d}", "context", made.clean, made.corrupt, "logit_diff", made.text, prompt,
                        made.answer, made.wrong, None,
                        {"clean_text": template.format(said), "corrupt_text": made.details["corrupt_text"],
                         "voice": voice, "said": said, "other": other, "word_span": [float(span[0]), float(span[1])],
                         "alignment": made.alignment})


TASK = Task("context", "Text context vs audio", "Does a word reach the decoder through what it hears or through the "
            "prompt?", "whisper", ("denoising",), "decoder.blocks.*.hook_resid_post", generate, grounding=True)
