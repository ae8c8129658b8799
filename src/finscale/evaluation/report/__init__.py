"""The experiment report: plots, HTML and Markdown from a results table (imports no torch)."""

from finscale.evaluation.report.render import ReportFiles, render_report

__all__ = ["ReportFiles", "render_report"]
