"""Split sizes and class balance per task and horizon, without storing anything.

Used by ``finscale dataset describe``: for each daily horizon in
``dataset.report_horizons`` and the weekly horizon, assemble the table exactly as the
builder would and report the samples and positives of every split.
"""

from __future__ import annotations

from dataclasses import dataclass

from finscale.config.schema import AppConfig
from finscale.datasets.prepare import prepare_table
from finscale.datasets.splits import SplitReport
from finscale.datasets.table import assign_splits
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

WEEKLY_HORIZON = 1


@dataclass(frozen=True)
class HorizonReport:
    """The split report of one (timescale, horizon) and the size floor it is held to."""

    timescale: str
    horizon: int
    report: SplitReport
    min_samples: int


def describe_horizons(
    manifest: Manifest, workspace: Workspace, config: AppConfig, *, include_weekly: bool = True
) -> list[HorizonReport]:
    """One report per configured daily horizon, then the weekly one."""
    variants = [("daily", h) for h in config.dataset.report_horizons]
    if include_weekly:
        variants.append(("weekly", WEEKLY_HORIZON))
    reports = []
    for timescale, horizon in variants:
        dataset = config.dataset.model_copy(update={"timescale": timescale, "horizon": horizon})
        variant = config.model_copy(update={"dataset": dataset})
        _, report = assign_splits(prepare_table(manifest, workspace, variant), dataset)
        reports.append(HorizonReport(timescale, horizon, report, dataset.splits.min_samples))
    return reports


def report_rows(reports: list[HorizonReport]) -> list[list[object]]:
    """Table rows: horizon, split, samples, span, then positives (rate) per threshold."""
    rows: list[list[object]] = []
    for item in reports:
        unit = "w" if item.timescale == "weekly" else "d"
        for stats in item.report.splits:
            flag = "" if stats.samples >= item.min_samples else " (< min_samples)"
            balance = [
                f"{stats.positives[t]} ({stats.positive_rate(t):.1%})" if stats.samples else "-"
                for t in item.report.tasks
            ]
            rows.append([f"{item.horizon}{unit}", stats.name, f"{stats.samples}{flag}",
                         stats.first_span_start or "-", stats.last_label_end or "-", *balance])
    return rows
