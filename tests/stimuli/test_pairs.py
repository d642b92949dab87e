"""Minimal pairs: noise at an SNR, spans replaced (nothing else changed), alignment, saving and loading."""

import numpy as np
import pytest

from otoscope.audio.io import Clip
from otoscope.errors import OtoscopeError
from otoscope.stimuli.degrade import add_noise, replace_span
from otoscope.stimuli.pairs import align_clips, load_pair
from otoscope.stimuli.words import WordSpan, split_words


def snr_db(clean: Clip, corrupt: Clip) -> float:
    noise = corrupt.samples.astype(np.float64) - clean.samples
    return 10 * np.log10(np.mean(clean.samples.astype(np.float64) ** 2) / np.mean(noise ** 2))


@pytest.mark.parametrize("kind", ["white", "pink"])
def test_add_noise_hits_the_snr(london_pair, kind):
    pair = add_noise(london_pair.clean, 5.0, noise=kind, seed=3, words=london_pair.clean_words)
    assert snr_db(pair.clean, pair.corrupt) == pytest.approx(5.0, abs=0.01)
    assert pair.factor == "noise" and pair.clean_words == london_pair.clean_words
    again = add_noise(london_pair.clean, 5.0, noise=kind, seed=3)
    np.testing.assert_array_equal(pair.corrupt.samples, again.corrupt.samples)  # seeded


def test_add_noise_changes_only_the_noise(london_pair):
    """The clean clip is the clip given, bit for bit; the corrupt one is it plus noise that does not depend on it."""
    clip = london_pair.clean
    pair = add_noise(clip, 10.0, noise="pink", seed=5)
    np.testing.assert_array_equal(pair.clean.samples, clip.samples)
    assert pair.clean.sample_rate == pair.corrupt.sample_rate and len(pair.corrupt.samples) == len(clip.samples)
    quiet = Clip(clip.samples * 0.5, clip.sample_rate, "half")
    other = add_noise(quiet, 10.0, noise="pink", seed=5)  # the same noise, scaled to the same SNR
    np.testing.assert_allclose(other.corrupt.samples - quiet.samples, 0.5 * (pair.corrupt.samples - clip.samples),
                               atol=2e-6)
    with pytest.raises(OtoscopeError, match="white"):
        add_noise(clip, 10.0, noise="purple")


def test_replace_span_by_word_and_by_seconds(london_pair):
    clip, words = london_pair.clean, london_pair.clean_words
    pair = replace_span(clip, word="London", words=words)
    london = next(w for w in words if w.word == "London")
    a, b = round(london.start * 16000), round(london.end * 16000)
    assert not pair.corrupt.samples[a:b].any()
    np.testing.assert_array_equal(pair.corrupt.samples[:a], clip.samples[:a])
    np.testing.assert_array_equal(pair.corrupt.samples[b:], clip.samples[b:])
    assert pair.text == " My name is John and I live in" and pair.answer == " London"
    np.testing.assert_array_equal(pair.clean.samples, clip.samples)
    assert pair.clean_words == pair.corrupt_words == words
    noisy = replace_span(clip, 0.5, 0.7, fill="noise", snr_db=0.0)
    assert noisy.corrupt.samples[8000:11200].std() > 0 and len(noisy.corrupt.samples) == len(clip.samples)
    with pytest.raises(OtoscopeError, match="start < end"):
        replace_span(clip, 0.7, 0.5)
    with pytest.raises(OtoscopeError, match="long"):
        replace_span(clip, 1.0, 9.0)
    with pytest.raises(OtoscopeError, match="no word span"):
        replace_span(clip, word="Berlin", words=words)


def test_align_pads_or_trims_and_says_so():
    a = Clip(np.ones(16000, dtype=np.float32), 16000, "a")
    b = Clip(np.ones(12000, dtype=np.float32), 16000, "b")
    x, y, note = align_clips(a, b, "pad")
    assert len(x.samples) == len(y.samples) == 16000 and not y.samples[12000:].any()
    assert note == "padded corrupt with 0.250 s of trailing silence to 1.000 s"
    x, y, note = align_clips(a, b, "trim")
    assert len(x.samples) == len(y.samples) == 12000 and note.startswith("trimmed the last 0.250 s of clean")


def test_committed_pair_round_trips(london_pair, tmp_path):
    assert london_pair.factor == "word" and london_pair.wrong == " Paris"
    assert [w.word for w in london_pair.clean_words] == split_words("My name is John and I live in London.")
    starts = [w.start for w in london_pair.clean_words]
    assert starts == sorted(starts) and london_pair.clean_words[-1].end <= london_pair.clean.seconds
    paths = london_pair.save(tmp_path / "copy")
    assert [p.name for p in paths] == ["clean.flac", "corrupt.flac", "pair.json"]
    again = load_pair(tmp_path / "copy")
    np.testing.assert_allclose(again.clean.samples, london_pair.clean.samples, atol=1 / 32768)
    assert again.clean_words == london_pair.clean_words and again.text == london_pair.text
    with pytest.raises(OtoscopeError, match="not found"):
        load_pair(tmp_path / "nothing")


def test_patch_args_feed_patch(london_pair):
    args = london_pair.patch_args()
    assert set(args) == {"clean", "corrupt", "words", "text", "answer", "wrong"}


def test_word_span_shift():
    assert WordSpan("a", 0.1, 0.2).shifted(1.0) == WordSpan("a", 1.1, 1.2)
