"""Writing a listen run: ``listen.json`` (gc(k) with its components and pairs), ``listen.png`` (the
listen-layer curve), ``listen.csv`` (one row per LLM block) and, with the lens, ``lens.json``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from otoscope._io import atomic_dir

if TYPE_CHECKING:
    from otoscope.listen.grounding import ListenResult
    from otoscope.listen.lens import LensResult

MARKERS = ("listen.json",)  # an earlier listen folder, which a new run may replace


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


def save_listen(result: "ListenResult", out: str | Path, lens: "LensResult | None" = None) -> Path:
    """Write the run into folder ``out`` (replaced as a whole: an earlier listen folder, or a new one)."""
    out = Path(out)
    with atomic_dir(out, markers=MARKERS) as folder:
        (folder / "listen.json").write_text(json.dumps(_finite(result.to_json()), indent=1))
        (folder / "listen.csv").write_text(_csv(result))
        plot_listen(result, folder / "listen.png")
        if lens is not None:
            (folder / "lens.json").write_text(json.dumps(_finite(lens.to_json()), indent=1))
    return out


def run_listen(model, pairs_dir: str | Path, out: str | Path, *, direction: str = "denoising", engine: str = "fast",
               n_boot: int = 1000, seed: int = 0, lens: bool = True):
    """The ``otoscope listen`` job: gc(k) over the pairs in ``pairs_dir`` (and the logit lens on the first pair's
    clean clip and prompt), written to ``out``. Returns ``(ListenResult, LensResult | None)``."""
    from otoscope._io import check_output_dir
    from otoscope.listen.grounding import listen
    from otoscope.listen.lens import audio_llm_lens
    from otoscope.listen.pairs import load_listen_pairs

    check_output_dir(out, MARKERS)  # before any work
    pairs = load_listen_pairs(pairs_dir, model.geometry.sample_rate)
    result = listen(model, pairs, direction=direction, engine=engine, n_boot=n_boot, seed=seed)
    reading = None
    if lens:
        first = pairs[0]
        reading = audio_llm_lens(model, first.clean, first.prompt if first.input_ids is None else None,
                                 answer=first.answer, input_ids=first.input_ids)
    save_listen(result, out, reading)
    return result, reading
