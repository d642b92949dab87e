"""Stimuli: synthetic noise levels and reproducibility, bundled animal clips, espeak speech."""

import numpy as np
import pytest

from otoscope.stimuli import noise
from otoscope.stimuli.animals import animal_clips
from otoscope.stimuli.speech import have_espeak, speak


@pytest.mark.parametrize("kind", noise.KINDS)
def test_noise_level_length_and_seed(kind):
    a = noise.synth(kind, np.random.default_rng(3), 1.5, -20.0)
    b = noise.synth(kind, np.random.default_rng(3), 1.5, -20.0)
    c = noise.synth(kind, np.random.default_rng(4), 1.5, -20.0)
    assert a.dtype == np.float32 and a.shape == (24000,)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    rms_db = 20 * np.log10(np.sqrt(np.mean(a.astype(np.float64) ** 2)))
    assert np.abs(a).max() <= noise.PEAK + 1e-6
    if kind == "clicks":  # sparse: lowered so its peaks do not clip
        assert rms_db < -19.0
    else:
        assert rms_db == pytest.approx(-20.0, abs=1.0)  # the fades lower it a little


def test_noise_colours_have_the_right_slope():
    rng = np.random.default_rng(0)
    for kind, lo_over_hi in (("white", (0.5, 2)), ("pink", (10, 1e4)), ("brown", (1e3, 1e7))):
        x = noise.synth(kind, rng, 4.0, -20.0)
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / noise.SAMPLE_RATE)
        ratio = spec[(f > 100) & (f < 200)].mean() / spec[(f > 4000) & (f < 8000)].mean()
        assert lo_over_hi[0] < ratio < lo_over_hi[1], (kind, ratio)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown noise kind"):
        noise.synth("purple", np.random.default_rng(0), 1.0, -20)


def test_bundled_animals():
    clips = animal_clips()
    assert sorted(clips) == ["cat", "cow", "dog", "duck", "frog", "horse", "owl", "pig", "rooster", "sheep"]
    import soundfile as sf

    info = sf.info(str(clips["dog"]))
    assert info.samplerate == 16000 and info.channels == 1 and info.duration == pytest.approx(2.0)


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")
def test_speak():
    x = speak("Please open the door.", "en-us")
    assert x.dtype == np.float32 and 1.0 < len(x) / 16000 < 3.0
    assert np.abs(x[:2000]).max() == 0.0  # 150 ms of silence first
