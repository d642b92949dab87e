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


def _gray(path):
    from PIL import Image

    return np.asarray(Image.open(path).convert("L"), dtype=np.float32)


def test_waveform_plot_for_long_and_short_clips(tmp_path):
    for n in (80_000, 1_600):
        samples = np.sin(np.arange(n) / 10).astype(np.float32)
        path = waveform_spectrogram(samples, 16_000, "clip", tmp_path / f"w{n}.png")
        image = _gray(path)
        assert image.shape == (462, 990)  # 9 × 4.2 in at 110 dpi
        # the spectrogram panel (lower two thirds) is mostly dark magma, the page around it white
        lower = image[int(0.45 * 462) : int(0.8 * 462), int(0.2 * 990) : int(0.9 * 990)]
        assert lower.mean() < 128 and image.std() > 30


def test_heatmap_draws_the_matrix(tmp_path):
    from otoscope.report.plots import heatmap

    matrix = np.eye(5)
    path = heatmap(matrix, list("abcde"), list("abcde"), "identity", tmp_path / "h.png", "x", "y")
    image = _gray(path)
    assert image.shape[0] > 300 and image.shape[1] > 400
    assert (image < 60).mean() > 0.05  # viridis' dark zeros fill most of the cells
    flat = heatmap(np.ones((5, 5)), list("abcde"), list("abcde"), "ones", tmp_path / "o.png", "x", "y")
    assert _gray(flat).mean() > image.mean() + 20  # ones are drawn yellow: the image follows the numbers


def test_locality_and_line_plots(tmp_path):
    import pandas as pd

    from otoscope.report.plots import layer_lines, locality_plot

    table = pd.DataFrame({"k": [2, 8, None], "seconds": [0.04, 0.16, None], "wer": [0.8, 0.1, 0.0]})
    for path in (locality_plot(table, tmp_path / "l.png"),
                 layer_lines([0, 1, 2], {"a": [1, 2, 3], "b": [3, 2, 1]}, "y", "t", tmp_path / "ll.png", marker_layer=1)):
        image = _gray(path)
        assert image.shape == (374, 660)  # 6 × 3.4 in at 110 dpi
        assert 0.005 < (image < 128).mean() < 0.3  # lines and labels on a white page
