"""Attention locality (Whisper): every encoder self-attention head restricted to ±k frames; WER of the
transcript against the unrestricted one, per band width."""

from __future__ import annotations

from pathlib import Path

from otoscope.report import html as H
from otoscope.report import plots
from otoscope.report.sections.context import ReportContext, Section, SectionResult, records


def _applies(ctx: ReportContext) -> bool:
    return ctx.model.adapter.decoding == "seq2seq" and ctx.config.locality_clips > 0


def build(ctx: ReportContext) -> SectionResult | None:
    """The WER-vs-band curve over the first ``locality_clips`` clips."""
    import pandas as pd

    from otoscope.geometry.locality import attention_locality

    if not _applies(ctx):
        return None
    n = ctx.config.locality_clips
    tables = []
    window = ctx.model.geometry.window_samples
    for clip, transcription in zip(ctx.clips[:n], ctx.transcriptions[:n]):
        # the clip's transcript is the unrestricted run (a clip longer than one window was decoded by windows)
        one_window = window is None or len(clip.samples) <= window
        known = transcription.text if transcription is not None and one_window else None
        result = attention_locality(ctx.model, [clip], ctx.config.locality_bands, reference=known)
        tables.append(result.table.assign(clip=Path(clip.name).name))
        ctx.step("attention locality")
    table = pd.concat(tables)
    mean = table.groupby("k", dropna=False, sort=False).agg(seconds=("seconds", "first"), wer=("wer", "mean")).reset_index()
    plots.locality_plot(mean, ctx.assets / "locality.png")
    rows = records(table)
    body = ('<p class="note">Every encoder self-attention head restricted to ±k frames (probabilities outside the band '
            'zeroed and renormalised); WER against the unrestricted transcript.</p>')
    body += H.image("assets/locality.png", "attention locality")
    body += H.table([("clip", "clip"), ("k", "k (frames)"), ("seconds", "± seconds"), ("wer", "WER"), ("text", "transcript")],
                    rows, text_columns=["clip", "text"])
    return SectionResult("locality", "Attention locality", "Attention locality", body, {"locality": rows})


SECTION = Section("attention locality", build,
                  steps=lambda ctx: min(ctx.config.locality_clips, len(ctx.clips)) if _applies(ctx) else 0)
