"""Plots of SAE evaluations."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def plot_density(frequency: Sequence[float], path: str | Path, *, title: str = "", floor: float = 1e-7) -> Path:
    """Histogram of log10 firing frequency per latent, with the dead count noted, saved as PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from otoscope._io import atomic_path

    freq = np.asarray(frequency, dtype=np.float64)
    dead = int((freq <= 0).sum())
    log_freq = np.log10(np.clip(freq[freq > 0], floor, 1.0))
    fig, ax = plt.subplots(figsize=(6, 3.2), constrained_layout=True)
    if log_freq.size:
        ax.hist(log_freq, bins=60, range=(np.log10(floor), 0), color="tab:blue")
    ax.set_xlabel("log10 firing frequency (fraction of frames)")
    ax.set_ylabel("latents")
    ax.set_title(f"{title}\n{freq.size} latents, {dead} never fired" if title else f"{freq.size} latents, {dead} never fired",
                 fontsize=9)
    ax.grid(alpha=0.3)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
