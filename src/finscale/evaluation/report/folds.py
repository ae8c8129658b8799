"""Walk-forward folds in the report: each predictor's test metrics per fold and pooled.

Folds score different test days, so their day-bootstrap errors are independent: the pooled
value is the mean of the fold values (each the mean over that fold's seeds, which share
their days: ``replicate_interval``) with se = sqrt(sum of the folds' se^2) / K. Collapsed
and thermal-stopped model rows are left out, as in the fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from finscale.evaluation.bootstrap import Interval, replicate_interval
from finscale.evaluation.results import rows_for_fits
from finscale.evaluation.scored import BASELINE_PREFIX

FOLD_METRICS = (("test AUC", "test_auc", "test_auc_se"),
                ("test log loss", "test_log_loss", "test_log_loss_se"))


@dataclass(frozen=True)
class FoldLine:
    """One predictor's metric on every fold and pooled over the folds."""

    predictor: str
    metric: str
    per_fold: dict[int, Interval]
    pooled: Interval


def pooled_over_folds(folds: Sequence[Interval], level: float) -> Interval:
    """The mean of per-fold intervals whose errors are independent (different test days)."""
    k = len(folds)
    mean = sum(f.estimate for f in folds) / k
    se = math.sqrt(sum(f.se**2 for f in folds)) / k
    z = stats.norm.ppf(0.5 + level / 2)
    return Interval(estimate=mean, low=mean - z * se, high=mean + z * se, level=level, se=se,
                    replicates=sum(f.replicates for f in folds))


def _fold_interval(group: pd.DataFrame, column: str, se_column: str, level: float
                   ) -> Interval | None:
    values = group[column].dropna()
    if values.empty:
        return None
    se = group.loc[values.index, se_column]
    return replicate_interval(values.to_numpy(float), level=level,
                              sampling_se=se.to_numpy(float) if se.notna().all() else None)


def _line(name: str, rows: pd.DataFrame, metric: tuple[str, str, str], level: float
          ) -> FoldLine | None:
    label, column, se_column = metric
    per_fold = {int(fold): interval for fold, group in rows.groupby("fold", sort=True)
                if (interval := _fold_interval(group, column, se_column, level)) is not None}
    if not per_fold:
        return None
    return FoldLine(name, label, per_fold, pooled_over_folds(list(per_fold.values()), level))


def fold_lines(rows: pd.DataFrame, level: float) -> tuple[FoldLine, ...]:
    """Per-fold and pooled lines of one panel's rows; () when no row has a fold."""
    rows = rows[rows["fold"].notna()]
    if rows.empty:
        return ()
    baseline = rows["model"].str.startswith(BASELINE_PREFIX)
    models = rows_for_fits(rows[~baseline], "test_auc").frame
    groups = [(f"budget {budget}", group) for budget, group in models.groupby("budget")]
    groups += [(str(name).removeprefix(BASELINE_PREFIX), group)
               for name, group in rows[baseline].groupby("model")]
    return tuple(line for name, group in groups for metric in FOLD_METRICS
                 if (line := _line(name, group, metric, level)) is not None)
