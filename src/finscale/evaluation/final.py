"""The scored metrics of a final run: every task on validation and test, from predictions.

Only a final run has a test split to score: ``DatasetSplits.test`` raises
``WithheldSplitError`` when the dataset was opened without it (a trial, anything that
selects), and ``final_scored_metrics`` reads it before it predicts anything. The decision
threshold is chosen on the VALIDATION predictions and the base rate is the TRAIN
prevalence, so nothing about the test split selects anything. Baselines log the same names
through ``pair_metrics``, so a model row and a baseline row of the results table line up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from finscale.datasets.load import DatasetSplits
from finscale.datasets.windows import WindowedDataset
from finscale.evaluation.baselines import scored_task
from finscale.evaluation.config import EvaluationConfig
from finscale.evaluation.metrics import choose_threshold, train_prevalence
from finscale.evaluation.scored import ScoredTask
from finscale.evaluation.scoring import scored_metrics

log = logging.getLogger(__name__)

# a split's samples -> (N, n_tasks) probabilities, in sample order
Predict = Callable[[WindowedDataset], np.ndarray]


def pair_metrics(val: ScoredTask, test: ScoredTask | None, *, base_rate: float,
                 threshold: float, horizon: int, config: EvaluationConfig) -> dict[str, float]:
    """``scored_metrics`` of one task's validation and (when given) test scores, at the
    threshold validation chose and the train base rate."""
    out: dict[str, float] = {}
    for scored in (val, test):
        if scored is not None:
            out.update(scored_metrics(scored, base_rate=base_rate, threshold=threshold,
                                      horizon=horizon, config=config))
    return out


def _probabilities(predict: Predict, dataset: WindowedDataset, split: str) -> np.ndarray:
    probs = np.asarray(predict(dataset), dtype=np.float64)
    expected = (len(dataset), dataset.n_tasks)
    if probs.shape != expected:
        raise ValueError(f"{split} predictions have shape {probs.shape}, expected {expected}")
    return probs


def final_scored_metrics(splits: DatasetSplits, predict: Predict, *, horizon: int,
                         config: EvaluationConfig, predictor: str) -> dict[str, float]:
    """Scored metrics of every task on val and test (``<split>_<metric>_<task>``).

    Raises ``WithheldSplitError`` for splits opened without their test split. A task whose
    train labels hold one class has no base rate: it is skipped with a warning.
    """
    test_split = splits.test  # first: a trial's splits refuse here, before any prediction
    val_probs = _probabilities(predict, splits.val, "val")
    test_probs = _probabilities(predict, test_split, "test")
    train_labels = splits.train.label_array()
    out: dict[str, float] = {}
    for j, task in enumerate(splits.train.task_names):
        rate = train_prevalence(train_labels[:, j])
        if not 0 < rate < 1:
            log.warning("task %s: train prevalence %g, no base rate: not scored", task, rate)
            continue
        val = scored_task(splits.val, "val", task, predictor, val_probs[:, j],
                          probabilistic=True)
        test = scored_task(test_split, "test", task, predictor, test_probs[:, j],
                           probabilistic=True)
        out.update(pair_metrics(val, test, base_rate=rate,
                                threshold=choose_threshold(val.labels, val.scores),
                                horizon=horizon, config=config))
    return out
