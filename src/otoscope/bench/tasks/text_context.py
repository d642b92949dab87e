"""Task 4, text context vs audio: the decoder prompt suggests one word, the audio says another.

The same clip (a sentence with word X) is decoded twice: after a previous-text prompt that agrees
(the sentence with X: clean) and one that suggests another word (the sentence with Y: corrupt). Metric:
logit(X) − logit(Y) at the word's position. The methods sweep the decoder's residual stream per token
(the audio is identical, so encoder cells have no effect), and the grounding coefficient per decoder
layer says whether the answer arrives by listening (cross-attention) or from the prompt (self-attention).
Cells are decoder positions, so there is no expected region in seconds (the word's span is in the details).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from otoscope.bench import sources
from otoscope.bench.pair import BenchPair
from otoscope.bench.tasks.asr_word import TEMPLATES
from otoscope.bench.tasks.base import Task


def generate(seed: int) -> Iterator[BenchPair]:
    """Candidate text-context pairs: a template sentence spoken with X, prompts with X (clean) and Y (corrupt)."""
    rng = np.random.default_rng(seed)
    speak = lambda template, said, suggested, voice: sources.synthesize(template.format(said), voice)  # noqa: E731
    for i, template, said, suggested, voice, speech in sources.template_pairs(rng, TEMPLATES, speak):
        text = template.format(said)
        index = next(k for k, w in enumerate(speech.words) if w.word == said)
        before = " " + " ".join(w.word for w in speech.words[:index])
        span = speech.words[index]
        prompt = (template.format(said), template.format(suggested))
        yield BenchPair(f"context-{i:03d}", "context", speech.clip, speech.clip, "logit_diff", before, prompt,
                        " " + said, " " + suggested, None,
                        {"text": text, "voice": voice, "said": said, "suggested": suggested,
                         "word_span": [span.start, span.end]})


TASK = Task("context", "Text context vs audio", "Does the decoder follow what it hears or what the prompt suggests?",
            "whisper", ("denoising",), "decoder.blocks.*.hook_resid_post", generate, grounding=True)
