"""Paper-ready plots of encoder-lens results."""

from __future__ import annotations

from pathlib import Path


def plot_layer_curves(result, path: str | Path) -> Path:
    """LIS, entropy and KL-to-final per encoder layer, three labelled panels, saved as PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from otoscope._io import atomic_path

    layers = [layer.layer for layer in result.layers]
    panels = [("LIS (cosine to final)", [layer.lis for layer in result.layers]),
              ("mean entropy (nats)", [layer.entropy for layer in result.layers]),
              ("mean KL(final ‖ layer) (nats)", [layer.kl_to_final for layer in result.layers])]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), constrained_layout=True)
    for ax, (label, values) in zip(axes, panels):
        ax.plot(layers, values, marker="o")
        ax.set_xlabel("encoder layer")
        ax.set_ylabel(label)
        ax.set_xticks(layers)
        ax.grid(alpha=0.3)
    if result.saturation_layer is not None:
        for ax in axes:
            ax.axvline(result.saturation_layer, color="tab:red", ls="--", lw=1, label="saturation layer")
        axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Encoder logit lens — {result.model} — {Path(result.path).name}")
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path
