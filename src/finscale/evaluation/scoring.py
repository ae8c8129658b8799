"""Everything a run logs about one scored task: metrics, their day-bootstrap errors and the
reliability bins, as flat ``<split>_<metric>_<task>`` numbers that ``results`` reads back.

A model run and a baseline run call the same function, so their results rows carry the
same columns and the report can set one beside the other.
"""

from __future__ import annotations

import contextlib
import math

from finscale.evaluation.bootstrap import (
    BootstrapError,
    DayBlockResampler,
    Metric,
    block_days,
    bootstrap_metric,
)
from finscale.evaluation.config import EvaluationConfig
from finscale.evaluation.metrics import (
    log_loss,
    reliability_metrics,
    reliability_table,
    roc_auc,
    skill,
    task_metrics,
)
from finscale.evaluation.scored import ScoredTask


def scored_metrics(scored: ScoredTask, *, base_rate: float, threshold: float, horizon: int,
                   config: EvaluationConfig) -> dict[str, float]:
    """Flat metrics of ``scored`` with ``<split>_roc_auc_se_<task>`` and (probabilities
    only) ``<split>_{log_loss,skill}_se_<task>`` from the day-block bootstrap and the
    reliability bins; an SE the bootstrap cannot give (too few days or one class) is NaN."""
    prefix = f"{scored.split}_"
    metrics = task_metrics(scored.task, scored.split, scored.labels, scored.scores,
                           base_rate=base_rate, threshold=threshold,
                           probabilistic=scored.probabilistic)
    out = metrics.flat(prefix)
    boot = config.bootstrap
    errors: dict[str, Metric] = {"roc_auc": roc_auc}
    if scored.probabilistic:
        # the skill's own resampled error: loss and base-rate loss move together with the
        # days drawn, so log_loss_se / base loss would overstate it
        errors.update(log_loss=log_loss, skill=lambda y, p: skill(y, p, base_rate))
    try:
        resampler = DayBlockResampler(scored.end_dates, horizon=horizon,
                                      block=block_days(horizon, boot.block_margin_days))
    except BootstrapError:
        resampler = None
    for name, metric in errors.items():
        se = math.nan  # stays NaN when the interval is undefined; the report says so
        if resampler is not None:
            with contextlib.suppress(BootstrapError):
                se = bootstrap_metric(metric, scored, resampler, replicates=boot.replicates,
                                      level=boot.level, seed=boot.seed).se
        out[f"{prefix}{name}_se_{scored.task}"] = se
    if scored.probabilistic:
        bins = reliability_table(scored.labels, scored.scores, bins=config.reliability_bins,
                                 strategy=config.reliability_strategy)
        out.update(reliability_metrics(bins, prefix, scored.task))
    return out
