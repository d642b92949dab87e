"""The main job: a self-contained HTML report."""

from otoscope.report.build import ReportResult, build_report, labels_from_manifest
from otoscope.report.config import ReportConfig

__all__ = ["ReportConfig", "ReportResult", "build_report", "labels_from_manifest"]
