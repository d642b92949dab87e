import numpy as np

from otoscope.report.plots import envelope, waveform_spectrogram


def test_envelope_is_min_and_max_per_bin():
    samples = np.random.default_rng(0).standard_normal(80_000).astype(np.float32)
    t, low, high = envelope(samples, 16_000, bins=100)
    assert len(t) == len(low) == len(high) == 100
    for i in (0, 37, 99):  # plain check of a few bins
        start, end = int(np.linspace(0, 80_000, 101)[i]), int(np.linspace(0, 80_000, 101)[i + 1])
        assert low[i] == samples[start:end].min() and high[i] == samples[start:end].max()
        assert t[i] == start / 16_000
    assert low.min() == samples.min() and high.max() == samples.max()
    short = samples[:150]
    t, low, high = envelope(short, 16_000, bins=100)
    assert low is high and np.array_equal(low, short)


def test_waveform_plot_for_long_and_short_clips(tmp_path):
    for n in (80_000, 1_600):
        samples = np.sin(np.arange(n) / 10).astype(np.float32)
        path = waveform_spectrogram(samples, 16_000, "clip", tmp_path / f"w{n}.png")
        assert path.stat().st_size > 1000
