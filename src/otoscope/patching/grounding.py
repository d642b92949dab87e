"""Grounding coefficient: does Whisper's decoder listen (cross-attention) or guess (its own text context)?

At decoder layer k the residual stream receives the audio through cross-attention
(``hook_cross_attn_out``) and the text context through self-attention (``hook_attn_out``). Patching each
of the two (all token positions) from the source run gives

    Δaudio(k), Δtext(k) = the normalised effect of the patch (denoising: recovery of the clean score,
                          noising: loss of it), and gc(k) = Δaudio / (Δaudio + Δtext).

gc near 1: at this layer the answer travels through what the decoder hears; near 0: through its text
context. gc is reported only where both Δ are >= 0 and their sum is positive (a patch that moves the
metric the wrong way has no share to take) — otherwise NaN, with the reason; the Δs are always reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from otoscope.errors import OtoscopeError
from otoscope.patching.cells import Cell
from otoscope.patching.config import DIRECTIONS
from otoscope.patching.session import PatchSession

AUDIO_HOOK = "decoder.blocks.{k}.hook_cross_attn_out"
TEXT_HOOK = "decoder.blocks.{k}.hook_attn_out"
MIN_TOTAL = 1e-3  # Δaudio + Δtext below this: neither pathway carries the answer at this layer


@dataclass
class GroundingLayer:
    """The grounding coefficient of one decoder layer and the numbers it comes from."""

    layer: int
    """Decoder block index."""
    audio_value: float
    """Metric with the cross-attention output (audio pathway) patched."""
    text_value: float
    """Metric with the self-attention output (text pathway) patched."""
    delta_audio: float
    """Normalised effect of the audio-pathway patch."""
    delta_text: float
    """Normalised effect of the text-pathway patch."""
    gc: float
    """Δaudio / (Δaudio + Δtext), or NaN (see ``note``)."""
    note: str = ""
    """Why gc is NaN, when it is."""


@dataclass
class GroundingResult:
    """Grounding coefficient per decoder layer for one pair."""

    model: str
    """Model name."""
    direction: str
    """``denoising`` or ``noising``."""
    metric: str
    """Metric name."""
    clean: float
    """Metric on the unpatched clean run."""
    corrupt: float
    """Metric on the unpatched corrupt run."""
    layers: list[GroundingLayer] = field(default_factory=list)
    """One entry per decoder layer."""

    def to_json(self) -> dict:
        """Plain-JSON form (NaN → null)."""
        clean = lambda x: None if isinstance(x, float) and not math.isfinite(x) else x  # noqa: E731
        return {"model": self.model, "direction": self.direction, "metric": self.metric, "clean": clean(self.clean),
                "corrupt": clean(self.corrupt),
                "layers": [{k: clean(v) for k, v in asdict(layer).items()} for layer in self.layers]}

    def to_frame(self):
        """One row per decoder layer."""
        import pandas as pd

        return pd.DataFrame([asdict(layer) for layer in self.layers])


def _effect(value: float, clean: float, corrupt: float, direction: str) -> float:
    span = clean - corrupt
    if abs(span) < 1e-9:
        return float("nan")
    recovered = (value - corrupt) / span
    return recovered if direction == "denoising" else 1.0 - recovered


def grounding_coefficient(session: PatchSession, direction: str = "denoising") -> GroundingResult:
    """gc(k) for every decoder layer k of a Whisper model, from two exact patches per layer."""
    model = session.model
    if not model.has_decoder:
        raise OtoscopeError(f"{model.name} has no decoder: the grounding coefficient compares Whisper's audio and "
                            "text pathways.")
    if direction not in DIRECTIONS:
        raise OtoscopeError(f"direction must be 'denoising' or 'noising', got {direction!r}.")
    n = model.n_decoder_layers
    hooks = [template.format(k=k) for k in range(n) for template in (AUDIO_HOOK, TEXT_HOOK)]
    clean_run, _ = session.runs(hooks)
    width = int(clean_run.acts[hooks[0]].shape[1])  # every decoder position, answer rows included
    cells = [Cell(hook, 0, width, "tokens") for hook in hooks]
    values = session.exact(cells, direction)
    clean, corrupt = session.clean_value, session.corrupt_value
    layers = []
    for k in range(n):
        audio, text = float(values[2 * k]), float(values[2 * k + 1])
        da, dt = _effect(audio, clean, corrupt, direction), _effect(text, clean, corrupt, direction)
        gc, note = float("nan"), ""
        if not (math.isfinite(da) and math.isfinite(dt)):
            note = "clean and corrupt score the same: no effect to share"
        elif da < 0 or dt < 0:
            note = "a patch moved the metric the other way (negative Δ)"
        elif da + dt < MIN_TOTAL:
            note = "neither pathway carries the difference at this layer"
        else:
            gc = da / (da + dt)
        layers.append(GroundingLayer(k, audio, text, da, dt, gc, note))
    return GroundingResult(model.name, direction, session.metric.name, clean, corrupt, layers)
