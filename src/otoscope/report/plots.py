"""Figures for the report: labelled axes in seconds and layers, readable on a laptop screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from otoscope._io import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11})
    return plt


# fixed-format figures (known labels and sizes) get fixed margins: constrained layout costs a second draw
FIXED_MARGINS = dict(left=0.13, right=0.97, bottom=0.15, top=0.9)


def _line_figure():
    """``(fig, ax)`` for a fixed-format line plot: one axis, 6 × 3.4 in, fixed margins."""
    fig, ax = _plt().subplots(figsize=(6, 3.4))
    fig.subplots_adjust(**FIXED_MARGINS)
    return fig, ax


def _save(fig, path: Path) -> Path:
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def envelope(samples: np.ndarray, sample_rate: int, bins: int = 2000):
    """``(seconds, low, high)`` for drawing a waveform: min and max per bin when longer than ``2 × bins``
    samples (else the samples themselves, ``low is high``)."""
    n = len(samples)
    if n <= 2 * bins:
        return np.arange(n) / sample_rate, samples, samples
    edges = np.linspace(0, n, bins + 1).astype(int)
    low, high = np.minimum.reduceat(samples, edges[:-1]), np.maximum.reduceat(samples, edges[:-1])
    return edges[:-1] / sample_rate, low, high


def waveform_spectrogram(samples: np.ndarray, sample_rate: int, title: str, path: Path,
                         mel: np.ndarray | None = None) -> Path:
    """Waveform over a log-mel spectrogram, both against seconds."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    fig.subplots_adjust(**FIXED_MARGINS, hspace=0.12)
    seconds = len(samples) / sample_rate
    t, low, high = envelope(samples, sample_rate)
    if low is high:
        ax1.plot(t, low, lw=0.5, color="tab:blue")
    else:  # min/max per bin: what a line through every sample would draw at this width, without its cost
        ax1.fill_between(t, low, high, lw=0.3, color="tab:blue")
    ax1.set_ylabel("amplitude")
    ax1.set_title(title)
    if mel is not None and mel.size:
        frames = mel.shape[1]
        ax2.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=[0, frames / 100, 0, mel.shape[0]])
        ax2.set_ylabel("mel channel")
    else:
        ax2.specgram(samples + 1e-9, NFFT=400, Fs=sample_rate, noverlap=240, cmap="magma")
        ax2.set_ylabel("frequency (Hz)")
    ax2.set_xlabel("time (s)")
    ax2.set_xlim(0, max(seconds, 1e-3))
    return _save(fig, path)


def layer_lines(layers, series: dict[str, list[float]], ylabel: str, title: str, path: Path, marker_layer=None) -> Path:
    """One or more per-layer curves on one labelled axis."""
    fig, ax = _line_figure()
    for label, values in series.items():
        ax.plot(layers, values, marker="o", label=label)
    if marker_layer is not None:
        ax.axvline(marker_layer, color="tab:red", ls="--", lw=1, label="saturation layer")
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.set_xticks(list(layers))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(series) > 1 or marker_layer is not None:
        ax.legend(fontsize=8)
    return _save(fig, path)


def norms_plot(summary, path: Path) -> Path:
    """Mean residual norm per layer with ± one standard deviation over clips."""
    fig, ax = _line_figure()
    x = summary["layer"].to_numpy()
    mean, std = summary["mean_norm"].to_numpy(), np.nan_to_num(summary["std_norm"].to_numpy())
    ax.errorbar(x, mean, yerr=std, marker="o", capsize=3)
    ax.set_xticks(x)
    ax.set_xticklabels(["embed" if "embed" in h else str(i - 1) for i, h in zip(x, summary["hook"])])
    ax.set_xlabel("layer (embed = input to block 0)")
    ax.set_ylabel("mean L2 norm over real frames")
    ax.set_title("Residual-stream norm per layer")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], title: str, path: Path, xlabel: str, ylabel: str,
            vmin=0.0, vmax=1.0, cmap="viridis", annotate: bool = True, colorbar_label: str = "") -> Path:
    """A labelled heatmap, values printed in the cells when it is small enough to read them."""
    plt = _plt()
    size = max(4.0, 0.55 * max(len(cols), 6))
    fig, ax = plt.subplots(figsize=(size + 1.2, max(3.4, 0.5 * len(rows) + 1.5)), constrained_layout=True)
    im = ax.imshow(matrix, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=45 if max(map(len, cols)) > 4 else 0, ha="right" if max(map(len, cols)) > 4 else "center")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if annotate and matrix.size <= 400:
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                value = matrix[i, j]
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value < (vmin + vmax) / 2 else "black")
    fig.colorbar(im, ax=ax, label=colorbar_label)
    return _save(fig, path)


def locality_plot(table, path: Path) -> Path:
    """WER against the attention band half-width (seconds, log scale)."""
    fig, ax = _line_figure()
    limited = table[table["k"].notna()]
    ax.plot(limited["seconds"], limited["wer"], marker="o")
    ax.set_xscale("log")
    ax.set_xlabel("attention band half-width (s)  [k frames × 20 ms]")
    ax.set_ylabel("WER vs unrestricted")
    ax.set_ylim(-0.05, max(1.05, float(limited["wer"].max()) + 0.05))
    ax.set_title("Encoder attention locality")
    ax.grid(alpha=0.3)
    return _save(fig, path)
