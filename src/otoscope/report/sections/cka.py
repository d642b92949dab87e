"""Linear CKA between every pair of layers of the model (unbiased minibatch estimate over real frames)."""

from __future__ import annotations

from otoscope.report import html as H
from otoscope.report import plots
from otoscope.report.sections.context import ReportContext, Section, SectionResult, short
from otoscope.report.sections.norms import GEOMETRY


def build(ctx: ReportContext) -> SectionResult:
    """The layer × layer CKA heatmap."""
    from otoscope.geometry.cka import cka_layers

    cka = cka_layers(ctx.items)
    names = [short(h) for h in cka.rows]
    plots.heatmap(cka.matrix, names, names, f"Linear CKA between layers ({cka.n_examples} frames, unbiased minibatch)",
                  ctx.assets / "cka.png", "layer", "layer", colorbar_label="CKA")
    ctx.step("norms & CKA")
    data = {"layers": names, "matrix": cka.matrix.round(5).tolist(), "frames": cka.n_examples, "batches": cka.n_batches}
    return SectionResult(*GEOMETRY, H.image("assets/cka.png", "CKA heatmap"), {"cka": data})


SECTION = Section("cka", build)
