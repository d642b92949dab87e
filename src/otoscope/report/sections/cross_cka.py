"""Linear CKA between the layers of the model and those of a second model (``compare_model``)."""

from __future__ import annotations

from otoscope.report import html as H
from otoscope.report import plots
from otoscope.report.sections.context import ReportContext, Section, SectionResult, short
from otoscope.report.sections.norms import GEOMETRY


def check(config) -> None:
    """The second model's name resolves (without loading it)."""
    from otoscope.models.registry import resolve

    if config.compare_model:
        resolve(config.compare_model)


def build(ctx: ReportContext) -> SectionResult | None:
    """The cross-model CKA heatmap (rows: this model's layers; columns: the other's)."""
    import otoscope
    from otoscope.geometry.cka import cka_across_models
    from otoscope.geometry.collect import collect_layers

    if not ctx.config.compare_model:
        return None
    model = ctx.model
    other = otoscope.load(ctx.config.compare_model, device=ctx.config.device)
    cross = cka_across_models(ctx.items, collect_layers(other, ctx.clips))
    rows, cols = [short(h) for h in cross.rows], [short(h) for h in cross.cols]
    plots.heatmap(cross.matrix, rows, cols, f"CKA: {model.name} (rows) vs {other.name} (columns)",
                  ctx.assets / "cka_cross.png", f"{other.name} layer", f"{model.name} layer", colorbar_label="CKA")
    ctx.step("cross-model CKA")
    data = {"model": other.name, "rows": rows, "cols": cols, "matrix": cross.matrix.round(5).tolist()}
    return SectionResult(*GEOMETRY, H.image("assets/cka_cross.png", "cross-model CKA"), {"cka_cross": data})


SECTION = Section("cross-model CKA", build, steps=lambda ctx: int(bool(ctx.config.compare_model)), check=check)
