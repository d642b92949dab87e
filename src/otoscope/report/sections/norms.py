"""Residual-stream norm per layer (mean over clips, ± one standard deviation)."""

from __future__ import annotations

from otoscope.report import html as H
from otoscope.report import plots
from otoscope.report.sections.context import ReportContext, Section, SectionResult, records

GEOMETRY = ("geometry", "Representation geometry", "Geometry")  # the card norms, CKA and cross-model CKA share


def build(ctx: ReportContext) -> SectionResult:
    """The norms plot and table."""
    from otoscope.geometry.norms import layer_norms, summarise_norms

    norms = summarise_norms(layer_norms(ctx.items))
    plots.norms_plot(norms, ctx.assets / "norms.png")
    rows = records(norms)
    body = H.image("assets/norms.png", "residual norms per layer")
    body += H.table([("layer", "layer"), ("hook", "hook"), ("mean_norm", "mean norm"), ("std_norm", "std over clips")],
                    rows, text_columns=["hook"])
    return SectionResult(*GEOMETRY, body, {"norms": rows})


SECTION = Section("norms", build, steps=lambda ctx: 0)
