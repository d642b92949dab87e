"""The enlarged held-out half: counts, reproducibility, and fit / held-out sources kept apart."""

from collections import Counter

import numpy as np
import pytest

from otoscope.stimuli import heldout, noise
from otoscope.stimuli.speech import SENTENCES, have_espeak


@pytest.mark.parametrize("kind", sorted(heldout.NEW_KINDS))
def test_new_kinds_are_reproducible_at_their_level(kind):
    a = heldout._synth(heldout.NEW_KINDS[kind], np.random.default_rng(1), 2.0, -25.0)
    b = heldout._synth(heldout.NEW_KINDS[kind], np.random.default_rng(1), 2.0, -25.0)
    assert a.dtype == np.float32 and a.shape == (32000,) and np.array_equal(a, b)
    assert np.abs(a).max() <= noise.PEAK + 1e-6 and np.isfinite(a).all()
    assert 20 * np.log10(np.sqrt(np.mean(a.astype(np.float64) ** 2))) == pytest.approx(-25.0, abs=1.5)


def test_pitch_shift_changes_duration_by_the_factor():
    x = noise.synth("tone", np.random.default_rng(0), 2.0, -20.0)
    assert len(heldout.pitch_shift(x, 1.25)) == pytest.approx(len(x) / 1.25, abs=2)


def test_extra_noise_and_animal_variants_never_use_fit_sources():
    from otoscope.stimuli.sets import speech_nonspeech_sets

    base = speech_nonspeech_sets(n_speech=0, noise_per_kind=1, seed=0)
    fit_animals = {s.source for s in base.fit if s.source.startswith("animal:")}
    variants = heldout.animal_variants(0)
    assert len(variants) == 4 * 5 and not {s.source for s in variants} & fit_animals
    extra = heldout.extra_noise(2, 2, 0)
    assert Counter(s.source.split(":")[1] for s in extra) == {**{k: 2 for k in noise.KINDS}, **{k: 2 for k in heldout.NEW_KINDS}}
    fit_noise = [s.clip.samples for s in base.fit if s.source.startswith("noise:")]
    assert not any(len(a) == len(b) and np.array_equal(a, b) for a in fit_noise for b in (s.clip.samples for s in extra))
    assert all(s.kind == "nonspeech" and s.text is None for s in extra + variants)


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
def test_study_sets_enlarge_only_the_held_out_half():
    from otoscope.stimuli.sets import speech_nonspeech_sets

    sets = heldout.study_sets(n_speech=4, noise_per_kind=1, extra_speech_clips=6)
    base = speech_nonspeech_sets(4, 1, 0)
    assert [s.clip.name for s in sets.fit] == [s.clip.name for s in base.fit]
    kinds = Counter(s.kind for s in sets.heldout)
    assert kinds["speech"] == 4 + 6 and kinds["nonspeech"] == 17 + 7 * 2 + 5 * 2 + 20
    fit_sentences = {s.text for s in sets.fit if s.kind == "speech"}
    held_sentences = {s.text for s in sets.heldout if s.kind == "speech"}
    assert held_sentences <= set(SENTENCES[len(SENTENCES) // 2 :]) and not fit_sentences & held_sentences


def test_sentence_halves_seed_zero_is_the_published_split_and_other_seeds_a_fresh_disjoint_one():
    from otoscope.stimuli import speech
    from otoscope.stimuli.sets import sentence_halves

    half = len(speech.SENTENCES) // 2
    assert sentence_halves(0) == (tuple(speech.SENTENCES[:half]), tuple(speech.SENTENCES[half:]))
    fit, held = sentence_halves(1)
    assert not set(fit) & set(held) and len(fit) + len(held) == len(speech.SENTENCES)
    assert set(fit) != set(speech.SENTENCES[:half])
    assert sentence_halves(1) == (fit, held)  # deterministic
