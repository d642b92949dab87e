"""Writing a listen run: ``listen.json`` (gc(k) with its components and pairs), ``listen.png`` (the
listen-layer curve), ``listen.csv`` (one row per LLM block), with the lens ``lens.json``, and with a window
sweep ``windows.json`` / ``windows.csv`` / ``windows.png`` (LLM block × audio-token window heatmap)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from otoscope._io import atomic_dir
from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.listen.grounding import ListenResult
    from otoscope.listen.lens import LensResult

MARKERS = ("listen.json",)  # an earlier listen folder, which a new run may replace


@dataclass
class WindowRun:
    """An LLM block × audio-token window sweep over a pair set (:func:`otoscope.listen.sweep.window_sweeps`)."""

    frame: object
    """The tidy table (``pandas.DataFrame``): pair, window, layer, start_s, end_s, first_position, n_tokens,
    value, effect."""
    window: dict
    """``{"tokens": N}`` or ``{"seconds": S}``."""
    direction: str
    """``denoising`` or ``noising``."""
    method: str
    """``exact`` or ``attribution`` (every value a first-order estimate)."""

    def strongest(self) -> tuple[float, int, float] | None:
        """``(mean effect, LLM block, window start in s)`` of the cell with the largest |mean effect|, or None."""
        from otoscope.listen.sweep import window_means

        mean, starts = window_means(self.frame)
        if not np.isfinite(mean).any():
            return None
        k, w = np.unravel_index(np.nanargmax(np.abs(mean)), mean.shape)
        return float(mean[k, w]), int(k), float(starts[w])

    def to_json(self, model: str) -> dict:
        """Plain-JSON form: the settings, the mean effect per block and window, and every cell."""
        from otoscope.listen.grounding import ESTIMATE_NOTE
        from otoscope.listen.sweep import window_means

        mean, starts = window_means(self.frame)
        return {"model": model, "direction": self.direction, "method": self.method, "estimate": self.method != "exact",
                "method_note": ESTIMATE_NOTE if self.method != "exact" else "", "window": self.window,
                "hook": "llm.blocks.{k}.hook_resid_pre", "window_start_s": starts.tolist(),
                "mean_effect": mean.tolist(), "cells": self.frame.to_dict(orient="records")}


def plot_windows(run: WindowRun, model: str, path: Path) -> None:
    """Heatmap of the mean normalised effect over pairs: LLM block (rows) × audio window (columns, by start time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from otoscope.listen.sweep import window_means

    mean, starts = window_means(run.frame)
    fig, ax = plt.subplots(figsize=(min(14, max(6.5, 3 + 0.35 * mean.shape[1])), 2.2 + 0.45 * mean.shape[0]))
    limit = max(1.0, float(np.nanmax(np.abs(mean)))) if np.isfinite(mean).any() else 1.0
    image = ax.imshow(mean, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit,
                      interpolation="nearest")
    ax.set_yticks(range(mean.shape[0]))
    step = max(1, mean.shape[1] // 12)
    ax.set_xticks(range(0, mean.shape[1], step))
    ax.set_xticklabels([f"{s:.2f}" for s in starts[::step]])
    ax.set_xlabel("audio window start (s)")
    ax.set_ylabel("LLM block k (input residual)")
    pairs = run.frame["pair"].nunique()
    what = "estimated (attribution)" if run.method != "exact" else "exact"
    ax.set_title(f"{model}: {run.direction} effect per audio window\n{what}, mean over {pairs} pair(s)", fontsize=9)
    fig.colorbar(image, ax=ax, label="normalised effect")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def plot_listen(result: "ListenResult", path: Path) -> None:
    """The listen-layer curve: gc(k) with its bootstrap band, and the three Δ components, per LLM block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = np.array([layer.layer for layer in result.layers])
    gc = np.array([layer.gc for layer in result.layers], dtype=float)
    low = np.array([layer.gc_low for layer in result.layers], dtype=float)
    high = np.array([layer.gc_high for layer in result.layers], dtype=float)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    top.plot(k, gc, "o-", color="C0", label="gc(k) = Δaudio / (Δaudio + Δtext)")
    if np.isfinite(low).any():
        top.fill_between(k, low, high, color="C0", alpha=0.2, label=f"{result.confidence:.0%} bootstrap over pairs")
    top.set_ylim(-0.05, 1.05)
    top.set_ylabel("grounding coefficient")
    top.set_title(f"{result.model}: where the answer sits ({len(result.pairs) - len(result.dropped)} pair(s), {result.direction})")
    top.legend(loc="best", fontsize=8)
    for j, (label, colour) in enumerate((("Δaudio (audio tokens)", "C2"), ("Δtext (prompt tokens)", "C3"),
                                         ("Δreadout (last prompt token)", "C7"))):
        values = [(layer.delta_audio, layer.delta_text, layer.delta_readout)[j] for layer in result.layers]
        bottom.plot(k, values, "o-", color=colour, label=label)
    bottom.axhline(0, color="black", lw=0.5)
    bottom.set_xticks(k)
    bottom.set_xlabel("LLM block k (its input residual patched)")
    bottom.set_ylabel(f"normalised effect ({result.metric})")
    bottom.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def _csv(result: "ListenResult") -> str:
    frame = result.to_frame()
    return frame.to_csv(index=False)


def _finite(obj):
    """JSON with NaN → null (json.dumps would write NaN, which is not JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def save_listen(result: "ListenResult", out: str | Path, lens: "LensResult | None" = None,
                windows: WindowRun | None = None) -> Path:
    """Write the run into folder ``out`` (replaced as a whole: an earlier listen folder, or a new one)."""
    out = Path(out)
    with atomic_dir(out, markers=MARKERS) as folder:
        (folder / "listen.json").write_text(json.dumps(_finite(result.to_json()), indent=1))
        (folder / "listen.csv").write_text(_csv(result))
        plot_listen(result, folder / "listen.png")
        if lens is not None:
            (folder / "lens.json").write_text(json.dumps(_finite(lens.to_json()), indent=1))
        if windows is not None:
            (folder / "windows.json").write_text(json.dumps(_finite(windows.to_json(result.model)), indent=1))
            (folder / "windows.csv").write_text(windows.frame.to_csv(index=False))
            plot_windows(windows, result.model, folder / "windows.png")
    return out


def run_listen(model, pairs_dir: str | Path, out: str | Path, *, direction: str = "denoising", engine: str = "fast",
               n_boot: int = 1000, seed: int = 0, lens: bool = True, method: str = "exact",
               window_tokens: int | None = None, window_seconds: float | None = None):
    """The ``otoscope listen`` job: gc(k) over the pairs in ``pairs_dir`` (and the logit lens on the first pair's
    clean clip and prompt; with ``window_tokens`` or ``window_seconds`` the LLM block × audio window sweep),
    written to ``out``. Returns ``(ListenResult, LensResult | None, WindowRun | None)``."""
    from otoscope._io import check_output_dir
    from otoscope.listen.grounding import listen
    from otoscope.listen.lens import audio_llm_lens
    from otoscope.listen.pairs import load_listen_pairs, prepare_listen_pair
    from otoscope.listen.sweep import window_sweeps

    if window_tokens is not None and window_seconds is not None:
        raise OtoscopeError("give the window as tokens or seconds, not both.")
    if (window_tokens is not None and int(window_tokens) < 1) or \
            (window_seconds is not None and not (math.isfinite(window_seconds) and window_seconds > 0)):
        raise OtoscopeError(f"the window must be at least 1 token or a positive number of seconds, got "
                            f"{window_tokens if window_tokens is not None else window_seconds}.")
    check_output_dir(out, MARKERS)  # before any work
    pairs = load_listen_pairs(pairs_dir, model.geometry.sample_rate)
    result = listen(model, pairs, direction=direction, engine=engine, n_boot=n_boot, seed=seed, method=method)
    windows = None
    if window_tokens is not None or window_seconds is not None:
        preps = [prepare_listen_pair(model, p) for p in pairs]
        frame = window_sweeps(model, preps, seconds=window_seconds, tokens=window_tokens, direction=direction,
                              engine=engine, method=method)
        window = {"tokens": int(window_tokens)} if window_tokens is not None else {"seconds": float(window_seconds)}
        windows = WindowRun(frame, window, direction, method)
    reading = None
    if lens:
        first = pairs[0]
        reading = audio_llm_lens(model, first.clean, first.prompt if first.input_ids is None else None,
                                 answer=first.answer, input_ids=first.input_ids)
    save_listen(result, out, reading, windows)
    return result, reading, windows
