"""Split sizes and class balance per task and horizon, without storing anything.

Used by ``finscale dataset describe``: for each daily horizon in
``dataset.report_horizons`` and the weekly horizon, assemble the table exactly as the
builder would and report the samples and positives of every split, why a split is
refused (below ``splits.min_samples``), the rows the assembly dropped (with the column to
blame) and, when ``splits.walk_forward`` is set, the same report per walk-forward fold
(only fold k when ``splits.walk_forward.fold`` selects it, as ``dataset build`` would).
"""

from __future__ import annotations

from dataclasses import dataclass

from finscale.config.schema import AppConfig
from finscale.datasets.assemble import DropReport
from finscale.datasets.prepare import prepare_table
from finscale.datasets.splits import SplitReport, SplitStats, fold_splits, walk_forward_folds
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
    drops: tuple[DropReport, ...] = ()
    fold: int | None = None


def describe_horizons(
    manifest: Manifest, workspace: Workspace, config: AppConfig, *, include_weekly: bool = True
) -> list[HorizonReport]:
    """One report per configured daily horizon, then the weekly one."""
    variants = [("daily", h) for h in config.dataset.report_horizons]
    if include_weekly:
        variants.append(("weekly", WEEKLY_HORIZON))
    splits_config = config.dataset.splits
    if splits_config.fold is not None:
        folds = {splits_config.fold: fold_splits(splits_config)}
    else:
        folds = dict(enumerate(walk_forward_folds(splits_config)))
    reports = []
    for timescale, horizon in variants:
        dataset = config.dataset.model_copy(update={"timescale": timescale, "horizon": horizon})
        variant = config.model_copy(update={"dataset": dataset})
        prepared = prepare_table(manifest, workspace, variant)
        for k, splits in folds.items():
            fold_dataset = dataset.model_copy(update={"splits": splits})
            _, report = assign_splits(prepared, fold_dataset)
            reports.append(HorizonReport(
                timescale, horizon, report, dataset.splits.min_samples, prepared.drops,
                fold=k if splits_config.walk_forward is not None else None,
            ))
    return reports


def variant_label(item: HorizonReport) -> str:
    """``1d``, ``1w`` or ``1d fold 2``: the horizon (and fold) a report row belongs to."""
    unit = "w" if item.timescale == "weekly" else "d"
    fold = "" if item.fold is None else f" fold {item.fold}"
    return f"{item.horizon}{unit}{fold}"


def refusal_reason(stats: SplitStats, item: HorizonReport) -> str:
    """Empty when the split is large enough; else why ``dataset build`` refuses it."""
    if stats.samples >= item.min_samples:
        return ""
    unit = "weeks" if item.timescale == "weekly" else "trading days"
    return (f"refused: {stats.samples} < min_samples {item.min_samples}; each sample needs "
            f"context {item.report.context} + horizon {item.horizon} {unit} inside "
            f"{stats.range_start}..{stats.range_end} (shorten the context or widen the range; "
            f"weekly: see configs/experiments/weekly.yaml)")


def drop_lines(reports: list[HorizonReport]) -> list[str]:
    """One line per (timescale, horizon, ticker): bars in, kept, and each drop reason."""
    lines, seen = [], set()
    for item in reports:
        for drop in item.drops:
            key = (item.timescale, item.horizon, drop.ticker)
            if key in seen:
                continue
            seen.add(key)
            reasons = "; ".join(f"{n} rows {why}" for why, n in drop.dropped.items()) or "none"
            lines.append(f"{drop.ticker} {item.timescale} h{item.horizon}: {drop.rows_in} bars, "
                         f"{drop.rows_kept} kept; dropped: {reasons}")
    return lines


def report_rows(reports: list[HorizonReport]) -> list[list[object]]:
    """Table rows: horizon, split, samples, span, then positives (rate) per threshold."""
    rows: list[list[object]] = []
    for item in reports:
        for stats in item.report.splits:
            flag = "" if stats.samples >= item.min_samples else " (< min_samples)"
            balance = [
                f"{stats.positives[t]} ({stats.positive_rate(t):.1%})" if stats.samples else "-"
                for t in item.report.tasks
            ]
            rows.append([variant_label(item), stats.name, f"{stats.samples}{flag}",
                         stats.first_span_start or "-", stats.last_label_end or "-", *balance])
    return rows
