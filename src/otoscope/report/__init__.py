"""The main job: a self-contained HTML report."""

from otoscope.report.build import ReportConfig, ReportResult, build_report, labels_from_manifest

__all__ = ["ReportConfig", "ReportResult", "build_report", "labels_from_manifest"]
