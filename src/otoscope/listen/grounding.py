"""The grounding coefficient per LLM layer: at which layer does the answer sit in the audio tokens, and at
which in the text prompt?

For each pair and LLM block k, the residual stream entering block k (``llm.blocks.{k}.hook_resid_pre``) is
patched from the source run at three position sets (:class:`LLMPositions`): the audio tokens, the
text-prompt tokens (every other prompt position before the readout) and the readout position itself.
Each patch's normalised effect (denoising: recovery of the clean score, ``(patched − corrupt) /
(clean − corrupt)``; noising: the share of it lost) gives Δaudio(k), Δtext(k), Δreadout(k), and

    gc(k) = Δaudio(k) / (Δaudio(k) + Δtext(k))

over the pair set (the Δs averaged over pairs first), with a bootstrap interval over pairs. gc near 1: at
block k the difference still travels in the audio tokens; near 0: it travels in the prompt tokens. Δreadout
shows when it has reached the position that answers (gc is then undefined when both other Δs vanish).
gc is NaN where a Δ is negative or both are below :data:`MIN_TOTAL`, with the reason.

``method="attribution"`` estimates the Δs to first order from one forward and one backward pass per pair
(:mod:`otoscope.listen.attribution`) instead of measuring each patch; gc is then an estimate, and the result
says so (``method``, ``estimate`` in its JSON).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from otoscope.errors import OtoscopeError
from otoscope.listen.attribution import attribution_patch
from otoscope.listen.engine import RESID, Cell, fast_patch, naive_patch
from otoscope.listen.pairs import ListenPair, PreparedListenPair, prepare_listen_pair

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

MIN_TOTAL = 1e-3  # Δaudio + Δtext below this: neither position set carries the difference at this layer
NEG_TOL = 1e-3  # a Δ above −NEG_TOL counts as zero (float rounding), below it as a patch that hurt
SPAN_MIN = 1e-6  # |clean − corrupt| below this: the pair has no effect to share (it is left out)
SETS = ("audio", "text", "readout")
ENGINES = ("fast", "naive")
METHODS = ("exact", "attribution")  # exact: one patched run per cell; attribution: first-order, one backward pass
ESTIMATE_NOTE = ("attribution: every Δ is a first-order estimate from one forward and one backward pass per pair "
                 "(grad · (source − target) summed over the patched positions), so gc is an estimate too; "
                 "check the layers that matter with method 'exact'")


def normalised(value: float, clean: float, corrupt: float, direction: str) -> float:
    """Effect of a patch: recovery of the clean score (denoising) or the share of it lost (noising)."""
    span = clean - corrupt
    if abs(span) < SPAN_MIN:
        return float("nan")
    recovered = (value - corrupt) / span
    return recovered if direction == "denoising" else 1.0 - recovered


def gc_of(delta_audio: float, delta_text: float) -> tuple[float, str]:
    """``(gc, note)`` from the two Δs, NaN with the reason where gc is undefined."""
    if not (math.isfinite(delta_audio) and math.isfinite(delta_text)):
        return float("nan"), "no pair with an effect to share"
    if delta_audio < -NEG_TOL or delta_text < -NEG_TOL:
        return float("nan"), "a patch moved the metric the other way (negative Δ)"
    if delta_audio + delta_text < MIN_TOTAL:
        return float("nan"), "neither audio nor prompt tokens carry the difference at this layer"
    delta_audio, delta_text = max(delta_audio, 0.0), max(delta_text, 0.0)  # float-rounding negatives are zeros
    return delta_audio / (delta_audio + delta_text), ""


@dataclass
class PairEffects:
    """One pair's scores and per-layer effects."""

    name: str
    """Pair name."""
    kind: str
    """``audio``, ``text`` or ``conflict``."""
    clean: float
    """Metric on the clean run."""
    corrupt: float
    """Metric on the corrupt run."""
    deltas: list[list[float]]
    """``[layers][3]``: Δaudio, Δtext, Δreadout per LLM block."""
    positions: dict = field(default_factory=dict)
    """Where the audio tokens, prompt and readout sit (:meth:`LLMPositions.to_json`)."""


@dataclass
class ListenLayer:
    """gc(k) of one LLM block over the pair set, with its components."""

    layer: int
    """LLM block index (its input residual is patched)."""
    delta_audio: float
    """Mean Δ over pairs for the audio-token positions."""
    delta_text: float
    """Mean Δ for the text-prompt positions."""
    delta_readout: float
    """Mean Δ for the readout position."""
    gc: float
    """Δaudio / (Δaudio + Δtext), or NaN (see ``note``)."""
    gc_low: float
    """Lower end of the bootstrap interval over pairs (NaN with fewer than 2 pairs)."""
    gc_high: float
    """Upper end of the bootstrap interval."""
    note: str = ""
    """Why gc is NaN, when it is."""


@dataclass
class ListenResult:
    """The listen-layer curve of one model on one pair set."""

    model: str
    """Model name."""
    direction: str
    """``denoising`` or ``noising``."""
    metric: str
    """``logit_diff`` or ``logprob``."""
    pairs: list[PairEffects]
    """Every pair with its effects (those without an effect are listed in ``dropped``)."""
    layers: list[ListenLayer] = field(default_factory=list)
    """gc(k) per LLM block."""
    dropped: list[str] = field(default_factory=list)
    """Pairs left out because clean and corrupt score the same."""
    confidence: float = 0.95
    """Coverage of the bootstrap interval."""
    n_boot: int = 0
    """Bootstrap resamples."""
    method: str = "exact"
    """``exact`` (every Δ measured) or ``attribution`` (every Δ, and so gc, a first-order estimate)."""

    def to_json(self) -> dict:
        """Plain-JSON form (NaN → null)."""
        def clean(x):
            return None if isinstance(x, float) and not math.isfinite(x) else x
        return {"model": self.model, "direction": self.direction, "metric": self.metric, "method": self.method,
                "estimate": self.method != "exact", "method_note": ESTIMATE_NOTE if self.method != "exact" else "",
                "gc_definition": "Δaudio / (Δaudio + Δtext), Δ = normalised effect of patching llm.blocks.{k}.hook_resid_pre "
                                 "at the audio-token or text-prompt positions, averaged over pairs",
                "confidence": self.confidence, "n_boot": self.n_boot,
                "layers": [{k: clean(v) for k, v in asdict(layer).items()} for layer in self.layers],
                "pairs": [{"name": p.name, "kind": p.kind, "clean": p.clean, "corrupt": p.corrupt, "positions": p.positions,
                           "deltas": [dict(zip(SETS, map(clean, d))) for d in p.deltas]} for p in self.pairs],
                "dropped": self.dropped}

    def to_frame(self):
        """One row per LLM block."""
        import pandas as pd

        return pd.DataFrame([asdict(layer) for layer in self.layers])


def check_options(direction: str, engine: str, method: str) -> None:
    """One-line errors for a bad direction, engine or method."""
    if direction not in ("denoising", "noising"):
        raise OtoscopeError(f"direction must be 'denoising' or 'noising', got {direction!r}.")
    if engine not in ENGINES:
        raise OtoscopeError(f"engine must be one of {ENGINES}, got {engine!r}.")
    if method not in METHODS:
        raise OtoscopeError(f"method must be one of {METHODS}, got {method!r}.")


def patched_values(model: "HookedAudioModel", prep: PreparedListenPair, target, source_cache, cells: Sequence[Cell],
                   engine: str = "fast", method: str = "exact") -> list[float]:
    """The metric after patching each cell: measured (``exact``, by ``engine``) or estimated (``attribution``)."""
    if method == "attribution":
        return attribution_patch(model, target, source_cache, cells, prep.score).tolist()
    return prep.score((fast_patch if engine == "fast" else naive_patch)(model, target, source_cache, cells)).tolist()


def pair_effects(model: "HookedAudioModel", prep: PreparedListenPair, direction: str = "denoising",
                 engine: str = "fast", method: str = "exact") -> PairEffects:
    """Δaudio, Δtext, Δreadout at every LLM block for one prepared pair (``method``: see :data:`METHODS`)."""
    check_options(direction, engine, method)
    pos = prep.positions
    n = model.n_llm_layers
    names = [RESID.format(k=k) for k in range(n)]
    clean_logits, clean_cache = model.run_with_cache(prep.clean, names_filter=names)
    corrupt_logits, corrupt_cache = model.run_with_cache(prep.corrupt, names_filter=names)
    target, source_cache = (prep.corrupt, clean_cache) if direction == "denoising" else (prep.clean, corrupt_cache)
    clean = float(prep.score(clean_logits[0, pos.readout]))
    corrupt = float(prep.score(corrupt_logits[0, pos.readout]))
    cells = [Cell(names[k], tuple(group), label) for k in range(n)
             for label, group in zip(SETS, (pos.audio, pos.text, [pos.readout]))]
    values = patched_values(model, prep, target, source_cache, cells, engine, method)
    deltas = [[normalised(values[3 * k + j], clean, corrupt, direction) for j in range(3)] for k in range(n)]
    return PairEffects(prep.pair.name, prep.pair.kind, clean, corrupt, deltas, pos.to_json())


def _curve(deltas: np.ndarray) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Mean Δs ``[layers, 3]`` and gc per layer from per-pair Δs ``[pairs, layers, 3]``."""
    mean = deltas.mean(0)
    return mean, [gc_of(a, t) for a, t, _ in mean]


def listen(model: "HookedAudioModel", pairs: Sequence[ListenPair], *, direction: str = "denoising",
           engine: str = "fast", n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
           method: str = "exact") -> ListenResult:
    """gc(k) for every LLM block of ``model`` over ``pairs``, with a bootstrap interval over pairs.

    ``method="attribution"`` estimates every Δ to first order (one backward pass per pair); the result says so."""
    if not pairs:
        raise OtoscopeError("no pairs given; pass at least one pair folder.")
    if not 0 < confidence < 1:
        raise OtoscopeError(f"confidence must be between 0 and 1, got {confidence}.")
    check_options(direction, engine, method)
    preps = [prepare_listen_pair(model, p) for p in pairs]  # every pair checked before any work
    effects = [pair_effects(model, prep, direction, engine, method) for prep in preps]
    kept = [e for e in effects if abs(e.clean - e.corrupt) >= SPAN_MIN]
    dropped = [e.name for e in effects if abs(e.clean - e.corrupt) < SPAN_MIN]
    if not kept:
        raise OtoscopeError("every pair scores the same clean and corrupt: nothing to patch; check the answers "
                            "(answer and wrong) and that the two runs really differ.")
    deltas = np.array([e.deltas for e in kept], dtype=np.float64)  # [pairs, layers, 3]
    mean, gcs = _curve(deltas)
    low = high = np.full(len(mean), np.nan)
    if len(kept) > 1 and n_boot > 0:
        rng = np.random.default_rng(seed)
        boots = np.array([[g for g, _ in _curve(deltas[rng.integers(0, len(kept), len(kept))])[1]]
                          for _ in range(n_boot)])  # [n_boot, layers]
        tail = (1 - confidence) / 2 * 100
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN layers give NaN bounds
                low, high = np.nanpercentile(boots, tail, axis=0), np.nanpercentile(boots, 100 - tail, axis=0)
    layers = [ListenLayer(k, float(mean[k, 0]), float(mean[k, 1]), float(mean[k, 2]), gcs[k][0], float(low[k]),
                          float(high[k]), gcs[k][1]) for k in range(len(mean))]
    metric = "/".join(sorted({p.metric_name for p in preps}))
    return ListenResult(model.name, direction, metric, effects, layers, dropped, confidence, n_boot if len(kept) > 1 else 0,
                        method)
