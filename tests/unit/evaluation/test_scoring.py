"""What a run logs about a scored task is what the results table reads back: every
metric column, its day-bootstrap error and the reliability bins."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from finscale.evaluation.config import BootstrapConfig, EvaluationConfig
from finscale.evaluation.metrics import roc_auc
from finscale.evaluation.results import METRIC_SOURCES, results_from_runs
from finscale.evaluation.scored import ScoredTask
from finscale.evaluation.scoring import scored_metrics
from finscale.tracking import RunRecord

TASK = "y_h1_1pct"
CONFIG = EvaluationConfig(bootstrap=BootstrapConfig(replicates=100))


def _scored(n: int, probabilistic: bool = True) -> ScoredTask:
    rng = np.random.default_rng(0)
    probs = rng.uniform(0.05, 0.6, n)
    labels = (rng.random(n) < probs).astype(float)
    dates = np.datetime64("2019-01-01") + np.arange(n)
    scores = probs if probabilistic else 10 + 30 * probs
    return ScoredTask(predictor="patchtst", task=TASK, split="test", sample_hash="h",
                      end_dates=dates, labels=labels, scores=scores,
                      probabilistic=probabilistic)


def test_logged_metrics_fill_every_results_column() -> None:
    scored = _scored(1200)
    metrics = scored_metrics(scored, base_rate=0.3, threshold=0.4, horizon=1, config=CONFIG)
    run = RunRecord("r", "1", "FINISHED", {"run_key": "k"}, {}, metrics)
    row = results_from_runs([run], "demo").frame.iloc[0]
    test_columns = [c for c in METRIC_SOURCES if c.startswith("test_")]
    assert {c: row[c] for c in test_columns if math.isnan(row[c])} == {}
    assert row["test_auc"] == pytest.approx(roc_auc(scored.labels, scored.scores))
    assert 0.005 < row["test_auc_se"] < 0.05 and 0.001 < row["test_log_loss_se"] < 0.05
    # loss and base-rate loss move together over resampled days: the skill varies less
    assert 0.001 < row["test_skill_se"] < row["test_log_loss_se"] / row["test_base_log_loss"]
    bins = json.loads(row["test_reliability"])
    assert len(bins) == CONFIG.reliability_bins and sum(b["count"] for b in bins) == 1200


def test_one_number_scores_log_ranks_only_and_short_splits_no_error() -> None:
    metrics = scored_metrics(_scored(1200, probabilistic=False), base_rate=0.3,
                             threshold=20.0, horizon=1, config=CONFIG)
    assert math.isnan(metrics[f"test_log_loss_{TASK}"])
    assert f"test_log_loss_se_{TASK}" not in metrics
    assert not any(key.startswith("test_rel_") for key in metrics)
    short = scored_metrics(_scored(60), base_rate=0.3, threshold=0.4, horizon=1,
                           config=CONFIG)  # fewer than two 41-day blocks
    assert math.isnan(short[f"test_roc_auc_se_{TASK}"])
    assert not math.isnan(short[f"test_roc_auc_{TASK}"])
