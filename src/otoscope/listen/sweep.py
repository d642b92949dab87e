"""Where in time, and at which LLM block, does the audio decide the answer? LLM block × audio-token window
(and, for prompt pairs, LLM block × prompt token: :func:`prompt_sweep`).

Each cell patches the residual stream entering block k (``llm.blocks.{k}.hook_resid_pre``) at the audio
tokens of one time window from the source run, and scores the readout position; windows are given in
seconds (converted through each audio token's time span) or in audio tokens. Only tokens of real audio
are swept (Voxtral's padding tokens after the clip are left alone). ``method="attribution"`` estimates
every cell from one forward and one backward pass (:mod:`otoscope.listen.attribution`) instead of one
patched run per cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from otoscope.errors import OtoscopeError
from otoscope.listen.engine import RESID, Cell
from otoscope.listen.grounding import check_options, normalised, patched_values
from otoscope.listen.pairs import PreparedListenPair

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel


def audio_windows(prep: PreparedListenPair, *, seconds: float | None = None, tokens: int | None = None) -> list[list[int]]:
    """Consecutive windows of the real audio tokens: ``seconds`` long (a token belongs to the window its start
    time falls in), or ``tokens`` tokens each."""
    if (seconds is None) == (tokens is None):
        raise OtoscopeError("give the window as seconds= or tokens=, one of the two.")
    pos = prep.positions
    real = pos.audio[: pos.real_audio]
    if tokens is not None:
        if int(tokens) < 1:
            raise OtoscopeError(f"the window must be at least 1 token, got {tokens}.")
        return [real[i:i + int(tokens)] for i in range(0, len(real), int(tokens))]
    if not (np.isfinite(seconds) and seconds > 0):
        raise OtoscopeError(f"the window must be a positive number of seconds, got {seconds}.")
    windows: dict[int, list[int]] = {}
    for p, start in zip(real, pos.audio_seconds[: len(real), 0]):  # each token in the window its start falls in
        windows.setdefault(int(np.floor(start / seconds + 1e-9)), []).append(p)
    windows = [windows[i] for i in sorted(windows)]
    return windows


def window_sweep(model: "HookedAudioModel", prep: PreparedListenPair, *, seconds: float | None = None,
                 tokens: int | None = None, layers: Sequence[int] | None = None, direction: str = "denoising",
                 engine: str = "fast", method: str = "exact"):
    """Tidy DataFrame, one row per (block, window): ``layer, start_s, end_s, first_position, n_tokens, value,
    effect`` (``value``: the metric after the patch, measured or, with ``method="attribution"``, estimated;
    ``effect``: the normalised recovery, or loss for noising)."""
    import pandas as pd

    check_options(direction, engine, method)
    n = model.n_llm_layers
    layers = list(range(n)) if layers is None else [int(k) for k in layers]
    bad = [k for k in layers if not 0 <= k < n]
    if bad:
        raise OtoscopeError(f"LLM blocks {bad} do not exist; {model.name} has blocks 0–{n - 1}.")
    windows = audio_windows(prep, seconds=seconds, tokens=tokens)
    names = [RESID.format(k=k) for k in range(n)]
    clean_logits, clean_cache = model.run_with_cache(prep.clean, names_filter=names)
    corrupt_logits, corrupt_cache = model.run_with_cache(prep.corrupt, names_filter=names)
    target, cache = (prep.corrupt, clean_cache) if direction == "denoising" else (prep.clean, corrupt_cache)
    readout = prep.positions.readout
    clean, corrupt = float(prep.score(clean_logits[0, readout])), float(prep.score(corrupt_logits[0, readout]))
    cells = [Cell(names[k], tuple(w)) for k in layers for w in windows]
    values = patched_values(model, prep, target, cache, cells, engine, method)
    spans = prep.positions.audio_seconds
    first = prep.positions.audio[0]
    rows = []
    for cell, value in zip(cells, values):
        lo, hi = cell.positions[0] - first, cell.positions[-1] - first
        rows.append({"layer": names.index(cell.hook), "start_s": float(spans[lo, 0]), "end_s": float(spans[hi, 1]),
                     "first_position": cell.positions[0], "n_tokens": len(cell.positions), "value": value,
                     "effect": normalised(value, clean, corrupt, direction)})
    return pd.DataFrame(rows)


def prompt_sweep(model: "HookedAudioModel", prep: PreparedListenPair, *, layers: Sequence[int] | None = None,
                 direction: str = "denoising", engine: str = "fast", method: str = "exact"):
    """LLM block × text-prompt token: one cell per prompt position (chat template and the user's prompt) whose
    input ids differ between the two runs, or every prompt position when none do (an audio pair). Tidy
    DataFrame: ``layer, position, clean_id, corrupt_id, value, effect``."""
    import pandas as pd

    check_options(direction, engine, method)
    n = model.n_llm_layers
    layers = list(range(n)) if layers is None else [int(k) for k in layers]
    bad = [k for k in layers if not 0 <= k < n]
    if bad:
        raise OtoscopeError(f"LLM blocks {bad} do not exist; {model.name} has blocks 0–{n - 1}.")
    pos = prep.positions
    clean_ids, corrupt_ids = prep.clean.input_ids[0].tolist(), prep.corrupt.input_ids[0].tolist()
    positions = [p for p in pos.text if clean_ids[p] != corrupt_ids[p]] or list(pos.text)
    names = [RESID.format(k=k) for k in range(n)]
    clean_logits, clean_cache = model.run_with_cache(prep.clean, names_filter=names)
    corrupt_logits, corrupt_cache = model.run_with_cache(prep.corrupt, names_filter=names)
    target, cache = (prep.corrupt, clean_cache) if direction == "denoising" else (prep.clean, corrupt_cache)
    clean = float(prep.score(clean_logits[0, pos.readout]))
    corrupt = float(prep.score(corrupt_logits[0, pos.readout]))
    cells = [Cell(names[k], (p,)) for k in layers for p in positions]
    values = patched_values(model, prep, target, cache, cells, engine, method)
    return pd.DataFrame([{"layer": names.index(c.hook), "position": c.positions[0], "clean_id": clean_ids[c.positions[0]],
                          "corrupt_id": corrupt_ids[c.positions[0]], "value": v,
                          "effect": normalised(v, clean, corrupt, direction)} for c, v in zip(cells, values)])


def window_sweeps(model: "HookedAudioModel", preps: Sequence[PreparedListenPair], *, seconds: float | None = None,
                  tokens: int | None = None, direction: str = "denoising", engine: str = "fast",
                  method: str = "exact"):
    """:func:`window_sweep` over several pairs: one tidy DataFrame with the columns ``pair`` (its name) and
    ``window`` (the window's index in time order) first. Pairs whose clean and corrupt runs score the same
    (``effect`` NaN) stay in, so the table says which."""
    import pandas as pd

    frames = []
    for prep in preps:
        frame = window_sweep(model, prep, seconds=seconds, tokens=tokens, direction=direction, engine=engine,
                             method=method)
        frame.insert(0, "window", frame.groupby("layer").cumcount())
        frame.insert(0, "pair", prep.pair.name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def window_means(frame) -> tuple[np.ndarray, np.ndarray]:
    """``(effect [layers, windows], start_s [windows])``: the effect averaged over pairs (NaN-skipping) per LLM
    block and window, from a :func:`window_sweeps` table."""
    table = frame.pivot_table(index="layer", columns="window", values="effect", aggfunc="mean", dropna=False)
    starts = frame.groupby("window").start_s.min().reindex(table.columns).to_numpy(dtype=float)
    return table.to_numpy(dtype=float), starts
