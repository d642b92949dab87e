"""The study's figures as PNG bytes: per-hook summary, PCA projections, group × group matrices, selectivity counts."""

from __future__ import annotations

import io

import numpy as np

from otoscope.report.plots import _plt


def _png(fig) -> bytes:
    plt = _plt()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _short(hook: str) -> str:
    """``encoder.blocks.3.hook_resid_post`` → ``blocks.3.resid_post`` (axis labels)."""
    parts = hook.split(".")[1:] or [hook]
    return ".".join(p.removeprefix("hook_") for p in parts)


def summary_plot(summary: list[dict]) -> bytes:
    """Two panels against the hook: raw cosine within / between / same-input, and probe accuracies with chance."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    x = np.arange(len(summary))
    names = [_short(r["hook"]) for r in summary]
    for key, label in (("raw_within", "within group"), ("raw_between", "between groups"), ("same_input", "same input + noise")):
        ax1.plot(x, [r[key] for r in summary], marker="o", label=label)
    ax1.set_ylabel("mean cosine (pooled)")
    ax1.set_title("Similarity (raw)")
    for key, label in (("probe_accuracy", "probe, pooled"), ("position_accuracy", "probe, single position")):
        ax2.plot(x, [r[key] for r in summary], marker="o", label=label)
    ax2.axhline(summary[0]["chance"], color="grey", ls=":", label="chance")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("cross-validated accuracy")
    ax2.set_title("Linear probes")
    for ax in (ax1, ax2):
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def projection_plot(projections: list[dict], labels: list[str]) -> bytes:
    """One PCA scatter per hook, points coloured by label."""
    plt = _plt()
    n = len(projections)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows + 0.4), squeeze=False, constrained_layout=True)
    classes = sorted(set(labels))
    colours = plt.cm.tab10(np.arange(len(classes)) % 10)
    lab = np.asarray(labels, dtype=object)
    for ax, proj in zip(axes.flat, projections):
        coords = np.asarray(proj["coords"])
        for colour, cls in zip(colours, classes):
            pts = coords[lab == cls]
            ax.scatter(pts[:, 0], pts[:, 1], s=14, color=colour, label=cls, alpha=0.8)
        ev = proj["explained"]
        ax.set_title(_short(proj["hook"]), fontsize=9)
        ax.set_xlabel(f"PC1 ({ev[0]:.0%})", fontsize=8)
        ax.set_ylabel(f"PC2 ({ev[1]:.0%})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="best")
    return _png(fig)


def matrix_plot(matrix: dict) -> bytes:
    """Raw and centered group × group mean cosine at one hook, values in the cells."""
    plt = _plt()
    classes = matrix["classes"]
    size = max(3.2, 0.6 * len(classes) + 1.6)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size), constrained_layout=True)
    for ax, key in zip(axes, ("raw", "centered")):
        m = np.asarray(matrix[key])
        lim = float(np.abs(m).max()) or 1.0
        im = ax.imshow(m, cmap="viridis" if key == "raw" else "RdBu_r", vmin=m.min() if key == "raw" else -lim,
                       vmax=m.max() if key == "raw" else lim)
        ax.set_xticks(range(len(classes)))
        ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)))
        ax.set_yticklabels(classes, fontsize=8)
        ax.set_title(f"{key} · {_short(matrix['hook'])}", fontsize=9)
        if m.size <= 144:
            for i in range(m.shape[0]):
                for j in range(m.shape[1]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7, color="white" if key == "raw" and
                            m[i, j] < (m.min() + m.max()) / 2 else "black")
        fig.colorbar(im, ax=ax, shrink=0.8)
    return _png(fig)


def selectivity_plot(counts: list[dict]) -> bytes:
    """Latents with selectivity above 2 and above 4, per label."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(counts) + 2), 3.2), constrained_layout=True)
    x = np.arange(len(counts))
    ax.bar(x - 0.2, [c["above_2"] for c in counts], 0.4, label="selectivity > 2")
    ax.bar(x + 0.2, [c["above_4"] for c in counts], 0.4, label="selectivity > 4")
    ax.set_xticks(x)
    ax.set_xticklabels([c["label"] for c in counts], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("latents")
    ax.set_title("Label-selective SAE latents")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)
