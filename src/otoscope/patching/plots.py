"""Patching heatmaps: hook (layer) × time for frame windows, × position for decoder tokens, word spans drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _row_label(cell) -> str:
    name = cell.hook.replace(".blocks.", " L").replace(".hook_", " ").replace("hook_", "")
    if cell.head is not None:
        name += f" h{cell.head}"
    if cell.neuron is not None:
        name += f" n{cell.neuron}"
    return name


def _colour_values(result) -> tuple[np.ndarray, str]:
    norm = np.array([c.normalized for c in result.cells], dtype=np.float64)
    if not np.isfinite(norm).any():
        return np.array([c.value for c in result.cells]), f"{result.metric} of the patched run"
    if result.direction == "noising":
        return 1.0 - norm, "share of the clean behaviour lost\n1 − (patched − corrupt) / (clean − corrupt)"
    return norm, "share of the clean behaviour recovered\n(patched − corrupt) / (clean − corrupt)"


_PREFETCH = None  # the background import thread, joined before plotting so matplotlib is never imported twice at once


def prefetch() -> None:
    """Import matplotlib (Agg) in a background thread, so that a command which will plot later pays for the
    import while its sweep runs: tensor work releases the GIL, and the import needs it only between kernels.
    :func:`plot_heatmap` waits for it first (two threads importing matplotlib's circular modules at once
    could see a half-initialised module). A failed import here is left for the plotting thread to report."""
    import threading

    global _PREFETCH

    def load():
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot  # noqa: F401
        except Exception:  # the main thread's own import says what is wrong
            pass

    if _PREFETCH is None:
        _PREFETCH = threading.Thread(target=load, name="otoscope-prefetch-matplotlib", daemon=True)
        _PREFETCH.start()


def plot_heatmap(result, path: str | Path, max_rows: int = 64) -> Path:
    """Draw one heatmap of ``result`` (a :class:`PatchResult`) to ``path`` (PNG, written atomically).

    Rows are hooks (and heads/neurons), columns the patched spans: seconds for frame windows (with the
    clean clip's words), decoder positions for token cells. Colour is the share of the clean behaviour
    recovered (denoising) or lost (noising), so that in both directions a strong colour means important.
    """
    if _PREFETCH is not None:
        _PREFETCH.join()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    from otoscope._io import atomic_path

    cells = result.cells
    values, label = _colour_values(result)
    rows = list(dict.fromkeys(_row_label(c) for c in cells))[:max_rows]
    row_of = {r: i for i, r in enumerate(rows)}
    on_frames = any(c.seconds is not None for c in cells)
    spans = []
    for c in cells:
        if c.seconds is not None:
            spans.append(c.seconds)
        elif c.tokens is not None:
            spans.append((c.tokens[0] - 0.5, c.tokens[1] - 0.5))
        else:
            spans.append((0.0, 1.0))
    finite = values[np.isfinite(values)]
    limit = float(max(np.abs(finite).max(), 1e-6)) if finite.size else 1.0
    if "share" in label:
        limit = max(limit, 1.0)  # normalised scores: full colour means the whole clean behaviour
    cmap = plt.get_cmap("RdBu_r")
    colour_norm = TwoSlopeNorm(vmin=-limit, vcenter=0.0, vmax=limit)

    height = min(1.0 + 0.32 * len(rows), 14)
    fig, ax = plt.subplots(figsize=(11, max(height, 3.0)), constrained_layout=True)
    # with overlapping windows (stride < window) each window is drawn from its start to the next start
    starts_by_row: dict[int, list[tuple[float, float, float]]] = {}
    for c, (a, b), v in zip(cells, spans, values):
        if _row_label(c) in row_of:
            starts_by_row.setdefault(row_of[_row_label(c)], []).append((a, b, v))
    for y, tiles in starts_by_row.items():
        tiles.sort()
        for i, (a, b, v) in enumerate(tiles):
            right = min(b, tiles[i + 1][0]) if i + 1 < len(tiles) else b
            colour = cmap(colour_norm(v)) if np.isfinite(v) else (0.8, 0.8, 0.8, 1.0)
            ax.add_patch(Rectangle((a, y - 0.5), right - a, 1.0, facecolor=colour, edgecolor="none"))
    lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
    if on_frames and result.context.get("seconds"):
        hi = min(hi, float(result.context["seconds"]))  # a cell over Whisper's padding is drawn up to the clip's end
    ax.set_xlim(lo, hi)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.set_xlabel("time (s)" if on_frames else "decoder position")
    if on_frames and result.words:
        for w in result.words:
            ax.axvline(w.start, color="black", lw=0.6, ls=":", alpha=0.6)
        top = ax.secondary_xaxis("top")
        top.set_xticks([(w.start + w.end) / 2 for w in result.words])
        top.set_xticklabels([w.word for w in result.words], fontsize=8)
        top.tick_params(length=0)
    scalar = plt.cm.ScalarMappable(norm=colour_norm, cmap=cmap)
    fig.colorbar(scalar, ax=ax, label=label, shrink=0.9)
    title = (f"{result.direction} · {result.method} · {result.metric}: clean {result.clean:.3g}, "
             f"corrupt {result.corrupt:.3g} — {result.model}")
    ax.set_title(title, fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
