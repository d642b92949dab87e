"""Splicing one rendering's word into another: identical samples outside, the stated shift, in-phase fades."""

import numpy as np
import pytest

from otoscope.stimuli.splice import splice


def tone(n, freq=200.0, phase=0.0, rate=16000):
    return np.sin(2 * np.pi * freq * np.arange(n) / rate + phase).astype(np.float32)


@pytest.mark.parametrize("longer", [True, False])
def test_outside_the_word_and_crossfades_the_samples_are_the_clean_ones(longer):
    rng = np.random.default_rng(0)
    clean = rng.standard_normal(8000).astype(np.float32)
    other = rng.standard_normal(9000).astype(np.float32)
    a, b = 3000, 4000
    a2, b2 = (3100, 4600) if longer else (3100, 3700)
    cut = splice(clean, other, (a, b), (a2, b2), crossfade=160)
    assert cut.shift == (b2 - a2) - (b - a) and len(cut.samples) == len(clean) + cut.shift
    assert cut.span == (a, a + b2 - a2) and cut.same_before == a - 160
    np.testing.assert_array_equal(cut.samples[:a - 160], clean[:a - 160])
    after_clean, after_cut = cut.same_after
    assert (after_clean, after_cut) == (b + 160, a + (b2 - a2) + 160)
    np.testing.assert_array_equal(cut.samples[after_cut:], clean[after_clean:])
    np.testing.assert_array_equal(cut.samples[a:cut.span[1]], other[a2:b2])  # the word itself, untouched
    # the crossfades really mix: neither side alone
    head = cut.samples[a - 160:a]
    assert not np.array_equal(head, clean[a - 160:a]) and not np.array_equal(head, other[a2 - 160:a2])
    data = cut.to_json(16000)
    assert data["shift"] == cut.shift and data["same_after"] == [after_clean, after_cut]


def test_crossfade_shrinks_at_the_clip_edges():
    clean, other = np.ones(1000, np.float32), np.full(1000, 2.0, np.float32)
    cut = splice(clean, other, (50, 900), (40, 950), crossfade=160)
    assert cut.crossfade == 40 and len(cut.samples) == 1000 + (910 - 850)
    with pytest.raises(ValueError, match="do not fit"):
        splice(clean, other, (900, 1200), (10, 20), crossfade=10)


def test_phase_search_lines_the_renderings_up():
    """The other rendering is the clean one 7 samples late: the search finds it and the fade is seamless."""
    clean = tone(8000)
    other = np.concatenate([np.zeros(7, np.float32), clean])[:8000]
    plain = splice(clean, other, (3000, 5000), (3000, 5000), crossfade=160)
    searched = splice(clean, other, (3000, 5000), (3000, 5000), crossfade=160, search=20)
    assert searched.source_span == (3007, 5007) and plain.source_span == (3000, 5000)
    np.testing.assert_allclose(searched.samples, clean, atol=1e-6)  # in phase: the tone comes back whole
    assert np.abs(plain.samples - clean).max() > 0.1  # 7 samples (31°) out of phase: the fade dips
