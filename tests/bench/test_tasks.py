"""Task generators: deterministic, equal-length pairs, regions inside the clip (skipped without espeak-ng)."""

import itertools

import numpy as np
import pytest

from otoscope.bench.pair import METRICS
from otoscope.bench.sources import espeak_available
from otoscope.bench.tasks import TASKS

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (apt-get install espeak-ng)")


@pytest.mark.parametrize("name", list(TASKS))
def test_generators_are_seeded_and_well_formed(name):
    task = TASKS[name]
    first = list(itertools.islice(task.generate(3), 2))
    again = list(itertools.islice(task.generate(3), 2))
    other = next(task.generate(4))
    for a, b in zip(first, again):
        # the same choices; espeak-ng's audio of the same text and voice can differ by a few percent in length
        # from call to call (its state carries over between syntheses), which is why the built suite folder,
        # not the seed, is the fixed artefact
        choices = lambda p: {k: v for k, v in p.details.items() if k not in ("word_span", "alignment")}  # noqa: E731
        assert a.id == b.id and choices(a) == choices(b) and (a.answer, a.wrong, a.text) == (b.answer, b.wrong, b.text)
    assert first[0].details != other.details or not np.array_equal(first[0].corrupt.samples, other.corrupt.samples)
    assert len({p.id for p in first}) == 2
    for p in first:
        assert p.task == name and p.metric in METRICS
        assert len(p.clean.samples) == len(p.corrupt.samples) and p.clean.sample_rate == 16000
        if p.region is not None:
            assert 0 <= p.region[0] < p.region[1] <= p.clean.seconds + 1e-6
        assert not np.array_equal(p.clean.samples, p.corrupt.samples)


def test_context_pairs_change_audio_and_prompt_together(tiny_en):
    for p in itertools.islice(TASKS["context"].generate(0), 3):
        clean, corrupt = (tiny_en.to_tokens(x) for x in p.prompt)
        assert len(clean) == len(corrupt) and clean != corrupt  # decoder positions line up
        assert p.answer.strip() in p.prompt[0] and p.wrong.strip() in p.prompt[1]
        start, end = (int(t * 16000) for t in p.details["word_span"])
        # a spliced minimal pair: the audio differs at the word, not before it
        assert np.array_equal(p.clean.samples[: start - 800], p.corrupt.samples[: start - 800])
        assert not np.array_equal(p.clean.samples[start:end], p.corrupt.samples[start:end])


def test_context_grounding_is_defined_on_the_bundled_model(tiny_en):
    # both pathways carry the contrast the same way, so the last decoder layer's gc is a share in (0, 1); the
    # first version of the task (the same audio under two prompts) gave a negative Δaudio there, and NaN
    from otoscope.bench.metrics import session_options
    from otoscope.patching import open_session
    from otoscope.patching.grounding import grounding_coefficient

    pair = next(TASKS["context"].generate(0))
    session = open_session(tiny_en, pair.clean, pair.corrupt, **session_options(tiny_en, pair))
    result = grounding_coefficient(session)
    assert result.clean > 0 > result.corrupt
    last = result.layers[-1]
    assert last.delta_audio > 0.05 and last.delta_text > 0.05 and 0 < last.gc < 1


def test_word_swap_region_is_the_swapped_word():
    p = next(TASKS["asr-word"].generate(0))
    assert p.answer.strip() in p.details["clean_text"] and p.wrong.strip() in p.details["corrupt_text"]
    start, end = (int(t * 16000) for t in p.region)
    energy = lambda x: float(np.mean(x**2))  # noqa: E731
    assert energy(p.clean.samples[start:end]) > 10 * energy(p.clean.samples[:800])  # speech, not the leading silence
