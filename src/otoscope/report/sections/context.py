"""What every report section reads: the model, the clips, and the work shared between sections.

The expensive shared results are computed once here: each detailed clip's encoder lens (whose residual
stream is reused as that clip's layer activations for norms, CKA and probes, and whose last-layer decode
is the clip's transcript), the transcripts, and every clip's layer activations.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

if TYPE_CHECKING:
    from otoscope.audio.io import Clip
    from otoscope.models.hooked import HookedAudioModel
    from otoscope.report.config import ReportConfig


class SectionResult(NamedTuple):
    """What one section adds to the report."""

    anchor: str
    """The HTML id of its card (``#anchor``); sections with the same anchor share one card, in list order."""
    title: str
    """The card's heading (the first section of a card gives it)."""
    nav: str
    """Its label in the page's navigation bar (the first section of a card gives it)."""
    html: str
    """The card's body (an HTML fragment; everything not written by us is escaped)."""
    data: dict
    """Its top-level ``report.json`` entries."""


@dataclass(frozen=True)
class Section:
    """One entry of the report's section list."""

    name: str
    """Short name, for messages."""
    build: Callable[["ReportContext"], "SectionResult | None"]
    """Compute the section; None when it does not apply to this model or configuration."""
    steps: Callable[["ReportContext"], int] = lambda ctx: 1
    """How many progress-bar steps :attr:`build` takes (it calls ``ctx.step`` that often)."""
    check: Callable[["ReportConfig"], None] = lambda config: None
    """Reject bad input of this section (a missing file, an unknown model) before any work: raise OtoscopeError."""


@dataclass
class ReportContext:
    """The inputs of every section and the results they share (computed once)."""

    model: HookedAudioModel
    """The model the report is about."""
    clips: list["Clip"]
    """Every clip, validated and at the model's rate."""
    config: "ReportConfig"
    """What goes into the report."""
    assets: Path
    """The folder for images, audio and weights, referenced as ``assets/NAME`` from the page."""
    step: Callable[[str], None] = lambda label: None
    """Advance the progress bar by one step, showing ``label``."""
    lenses: list = field(default_factory=list)
    """Each clip's :class:`~otoscope.lens.encoder.EncoderLensResult` (detailed Whisper clips) or None."""
    transcriptions: list = field(default_factory=list)
    """Each clip's greedy transcription result, or None where the model cannot transcribe."""

    @property
    def n_detail(self) -> int:
        """Clips that get a full lens section."""
        return min(self.config.detailed_clips, len(self.clips))

    @functools.cached_property
    def items(self) -> list:
        """Every clip's residual stream per layer (real frames); clips with an encoder lens already have it."""
        from otoscope.geometry.collect import LayerActivations, collect_layers, layer_hooks

        labels = self.config.labels
        rest = [i for i, lens in enumerate(self.lenses) if lens is None]
        fresh = iter(collect_layers(self.model, [self.clips[i] for i in rest],
                                    None if labels is None else [labels[i] for i in rest]) if rest else ())
        hooks = layer_hooks(self.model)
        return [next(fresh) if lens is None else LayerActivations(clip.name, hooks, lens.residuals,
                                                                   None if labels is None else labels[i])
                for i, (clip, lens) in enumerate(zip(self.clips, self.lenses))]


def prepare(ctx: ReportContext) -> None:
    """Fill ``ctx.lenses`` (each detailed clip's encoder lens) and ``ctx.transcriptions``."""
    from otoscope.lens.encoder import encoder_lens

    model = ctx.model
    detailed = ctx.clips[: ctx.n_detail]
    # Whisper: one encoder forward and one batched decode per detailed clip
    lenses = [encoder_lens(model, [clip]) for clip in detailed] if "encoder" in model.adapter.lens_kinds \
        else [None] * len(detailed)
    ctx.lenses = lenses + [None] * (len(ctx.clips) - ctx.n_detail)
    ctx.transcriptions = _transcriptions(model, ctx.clips, ctx.lenses)


def _transcriptions(model: HookedAudioModel, clips, lenses) -> list:
    """Each clip's greedy transcript. Where an encoder lens ran, its last layer's decode *is* the model's
    transcript (that layer's normed residual is the encoder output), so only the other clips — and any
    whose lens decode hit its token limit — are transcribed."""
    can = model.adapter.can_transcribe
    out = [lens.transcription if lens is not None and lens.transcription.finished else None for lens in lenses]
    rest = [i for i, t in enumerate(out) if t is None]
    if can and rest:
        for i, result in zip(rest, model.transcribe([clips[i] for i in rest])):
            out[i] = result
    return out


def records(frame) -> list[dict]:
    """A DataFrame as JSON records (plain floats, NaN as null)."""
    return json.loads(frame.to_json(orient="records"))


def short(hook: str) -> str:
    """A layer hook's short name for axes: ``embed``, or the block index."""
    if hook.endswith("hook_embed"):
        return "embed"
    parts = hook.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "blocks" else hook
