"""SAE features (``otoscope report --sae SAE_DIR``): each clip's strongest latents over time, linked to the
dashboard's latent pages when ``--sae-dashboard`` is given. The section itself is built by
:func:`otoscope.features.report_section.feature_section`; this module places it in the report."""

from __future__ import annotations

from pathlib import Path

from otoscope.errors import OtoscopeError
from otoscope.report.sections.context import ReportContext, Section, SectionResult


def check(config) -> None:
    """The SAE and dashboard folders exist before any work."""
    if config.sae is not None and not Path(config.sae).is_dir():
        raise OtoscopeError(f"SAE folder not found: {config.sae}; pass the folder written by 'otoscope sae train'.")
    if config.sae_dashboard is not None and not Path(config.sae_dashboard).is_dir():
        raise OtoscopeError(f"dashboard folder not found: {config.sae_dashboard}; "
                            "pass the folder written by 'otoscope sae dashboard'.")


def build(ctx: ReportContext) -> SectionResult | None:
    """The feature section for every report clip."""
    from otoscope.features.report_section import feature_section

    if ctx.config.sae is None:
        return None
    section = feature_section(ctx.model, ctx.clips, ctx.config.sae, ctx.assets.parent, dashboard=ctx.config.sae_dashboard)
    ctx.step("SAE features")
    return SectionResult(section.anchor, section.title, "Features", section.html, {"features": section.data})


SECTION = Section("features", build, steps=lambda ctx: int(ctx.config.sae is not None), check=check)
