"""The report's sections, in page order. Adding a section is one new module here and one entry below.

Each module defines ``SECTION = Section(name, build, steps, check)``: ``check(config)`` rejects bad input
before any work (optional), ``build(ctx)`` computes the section's numbers from
the shared :class:`ReportContext` (writing its images into ``ctx.assets``) and returns a
:class:`SectionResult` — anchor, title, navigation label, HTML body, ``report.json`` entries — or None
when it does not apply. Sections sharing an anchor render in one card (norms, CKA, cross-model CKA).
"""

from otoscope.report.sections import cka, clips, cross_cka, features, groups, locality, norms, patching, tuned
from otoscope.report.sections.context import ReportContext, Section, SectionResult

SECTIONS: list[Section] = [clips.SECTION, norms.SECTION, cka.SECTION, cross_cka.SECTION, tuned.SECTION,
                           locality.SECTION, groups.SECTION, patching.SECTION, features.SECTION]

__all__ = ["SECTIONS", "ReportContext", "Section", "SectionResult"]
