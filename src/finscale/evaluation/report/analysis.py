"""What the report says, computed from a results table (no plotting, no torch).

One panel per (tickers, timescale, horizon, tier, task). In each: scaling fits of the
error metrics against the real parameter count (log loss, 1 - AUC, 1 - skill) on the rows
a fit may use (collapsed and thermal-stopped rows left out and counted), every baseline's
value with its interval, and the best model against the best baseline by test AUC. The
"best" of each is chosen on VALIDATION AUC when the rows carry it (test would flatter it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from finscale.evaluation.bootstrap import Interval, replicate_interval
from finscale.evaluation.config import EvaluationConfig
from finscale.evaluation.report.folds import FoldLine, fold_lines
from finscale.evaluation.results import require_columns, rows_for_fits
from finscale.evaluation.scaling import ScalingFitError, ScalingPoints, ScalingResult, fit_scaling
from finscale.evaluation.scored import BASELINE_PREFIX

AXIS = "n_parameters"
PANEL_KEYS = ("tickers", "timescale", "horizon", "tier", "task_label")
TARGET_TASK = re.compile(r"^y_[a-z]\d+_(.+)$")  # y_h1_1pct -> 1pct (the horizon is a key)


@dataclass(frozen=True)
class ErrorMetric:
    """A results column turned into an error (lower is better, > 0) for a power law."""

    column: str
    label: str
    se_column: str | None
    to_error: Callable[[np.ndarray], np.ndarray]


ERROR_METRICS = (
    ErrorMetric("test_log_loss", "test log loss", "test_log_loss_se", lambda v: v),
    ErrorMetric("test_auc", "1 - test AUC", "test_auc_se", lambda v: 1 - v),
    ErrorMetric("test_skill", "1 - test skill", "test_skill_se", lambda v: 1 - v),
)


@dataclass(frozen=True)
class BaselineLine:
    """A baseline's value of one error metric (mean over its replicates) with an interval."""

    name: str
    interval: Interval


@dataclass(frozen=True)
class MetricFit:
    """One error metric of a panel: the points, both laws (or why not), the baselines."""

    metric: ErrorMetric
    x: np.ndarray
    y: np.ndarray
    result: ScalingResult | None
    refusal: str
    baselines: tuple[BaselineLine, ...]


@dataclass(frozen=True)
class BestComparison:
    """Best model vs best baseline by test AUC (difference model - baseline)."""

    model: str
    model_auc: Interval
    baseline: str
    baseline_auc: Interval
    difference: Interval | None
    chosen_on: str


@dataclass(frozen=True)
class Panel:
    """One cell of the matrix (all budgets) with its fits, baselines and comparison."""

    key: dict[str, str]
    fits: tuple[MetricFit, ...]
    comparison: BestComparison | None
    excluded: dict[str, int] = field(default_factory=dict)
    folds: tuple[FoldLine, ...] = ()  # walk-forward: per fold and pooled

    @property
    def title(self) -> str:
        k = self.key
        return f"{k['tickers']} {k['timescale']} H{k['horizon']} {k['tier']}: {k['task_label']}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.title).strip("-").lower()


def task_label(target: str) -> str:
    match = TARGET_TASK.match(target)
    return match.group(1) if match else target


def is_baseline(model: pd.Series) -> pd.Series:
    return model.str.startswith(BASELINE_PREFIX)


def _interval(frame: pd.DataFrame, column: str, se_column: str | None, level: float,
              to_value: Callable[[np.ndarray], np.ndarray]) -> Interval | None:
    values = frame[column].dropna()
    if values.empty:
        return None
    se = None
    if se_column is not None and se_column in frame and frame.loc[values.index,
                                                                   se_column].notna().all():
        se = frame.loc[values.index, se_column].to_numpy(np.float64)
    return replicate_interval(to_value(values.to_numpy(np.float64)), level=level,
                              sampling_se=se)


def _baselines(rows: pd.DataFrame, metric: ErrorMetric, level: float
               ) -> tuple[BaselineLine, ...]:
    lines = []
    for name, group in rows.groupby("model", sort=True):
        interval = _interval(group, metric.column, metric.se_column, level, metric.to_error)
        if interval is not None:
            lines.append(BaselineLine(str(name).removeprefix(BASELINE_PREFIX), interval))
    return tuple(lines)


def _fit(models: pd.DataFrame, baselines: pd.DataFrame, metric: ErrorMetric,
         config: EvaluationConfig) -> tuple[MetricFit, dict[str, int]] | None:
    if models[metric.column].isna().all():
        return None  # the runs did not log this metric: no panel, not a refusal
    usable = rows_for_fits(models, metric.column)
    x = usable.frame[AXIS].to_numpy(np.float64)
    y = metric.to_error(usable.frame[metric.column].to_numpy(np.float64))
    se = (usable.frame[metric.se_column].to_numpy(np.float64)
          if metric.se_column in usable.frame else None)
    result, refusal = None, ""
    try:
        points = ScalingPoints.from_rows(AXIS, metric.label, x, y, sampling_se=se)
        result = fit_scaling(points, replicates=config.fit_replicates,
                             level=config.bootstrap.level, seed=config.bootstrap.seed)
    except ScalingFitError as exc:
        refusal = str(exc)
    level = config.bootstrap.level
    return (MetricFit(metric=metric, x=x, y=y, result=result, refusal=refusal,
                      baselines=_baselines(baselines, metric, level)), usable.excluded)


def _best(frame: pd.DataFrame, by: str, group: str) -> str:
    means = frame.groupby(group)[by].mean()
    return str(means.idxmax())


def _compare(models: pd.DataFrame, baselines: pd.DataFrame, level: float
             ) -> BestComparison | None:
    """Best budget vs best baseline by AUC; unpaired difference (wider than paired)."""
    models = rows_for_fits(models, "test_auc").frame
    baselines = baselines.dropna(subset=["test_auc"])
    if models.empty or baselines.empty:
        return None
    chosen_on = ("validation AUC" if models["val_auc"].notna().all()
                 and baselines["val_auc"].notna().all() else "test AUC (no validation AUC)")
    by = "val_auc" if chosen_on == "validation AUC" else "test_auc"
    budget = _best(models, by, "budget")
    baseline = _best(baselines, by, "model")
    identity: Callable[[np.ndarray], np.ndarray] = lambda v: v  # noqa: E731
    m = _interval(models[models["budget"] == budget], "test_auc", "test_auc_se", level,
                  identity)
    b = _interval(baselines[baselines["model"] == baseline], "test_auc", "test_auc_se", level,
                  identity)
    assert m is not None and b is not None  # both groups hold test AUCs
    difference = None
    se = math.hypot(m.se, b.se)
    if math.isfinite(se):
        z = stats.norm.ppf(0.5 + level / 2)
        gap = m.estimate - b.estimate
        difference = Interval(estimate=gap, low=gap - z * se, high=gap + z * se, level=level,
                              se=se, replicates=m.replicates + b.replicates)
    return BestComparison(model=budget, model_auc=m,
                          baseline=baseline.removeprefix(BASELINE_PREFIX), baseline_auc=b,
                          difference=difference, chosen_on=chosen_on)


def _panel(key: dict[str, str], rows: pd.DataFrame, config: EvaluationConfig) -> Panel:
    baseline_mask = is_baseline(rows["model"])
    models, baselines = rows[~baseline_mask], rows[baseline_mask]
    fits, excluded = [], {}
    for metric in ERROR_METRICS:
        fitted = _fit(models, baselines, metric, config)
        if fitted is not None:
            fits.append(fitted[0])
            for reason, count in fitted[1].items():
                if not reason.startswith("no "):
                    excluded[reason] = max(excluded.get(reason, 0), count)
    return Panel(key=key, fits=tuple(fits),
                 comparison=_compare(models, baselines, config.bootstrap.level),
                 excluded=excluded, folds=fold_lines(rows, config.bootstrap.level))


def analyse(table: pd.DataFrame, config: EvaluationConfig) -> list[Panel]:
    """Every panel of a results table, in key order."""
    require_columns(table, ("tickers", "timescale", "horizon", "tier", "target", "model",
                            "budget", AXIS, "collapsed", "thermal_stopped", "val_auc",
                            *(m.column for m in ERROR_METRICS)))
    frame = table.assign(task_label=table["target"].map(task_label),
                         horizon=table["horizon"].astype(str))
    panels = []
    for values, rows in frame.groupby(list(PANEL_KEYS), sort=True):
        panels.append(_panel(dict(zip(PANEL_KEYS, map(str, values), strict=True)), rows,
                             config))
    return panels
