"""Baselines scored on exactly the model's samples and labels.

A model's sample is the window ending at ``positions[i]``; every baseline scores the same
positions with what is known at that window's last row. Each result carries its split's
``sample_hash``, so a comparison with a model (``scored.require_same_samples``) refuses
different samples or targets. Baselines, weakest first:

- ``base-rate``: the train prevalence, the same for every sample (skill 0 by construction);
- one-number scores with no fitting (VIX level, ATR / close, 20-day volatility, the day's
  range, |return|), oriented on validation (the sign with validation AUC >= 0.5); a score
  whose column is not in the dataset is skipped with the reason;
- ``logistic``: L2 logistic regression on the standardised last row plus a few lagged
  rows, its strength chosen on validation;
- ``hgb``: scikit-learn HistGradientBoostingClassifier, its settings chosen on validation
  (no internal early stopping: that would carve a random, time-leaking slice out of train).

Selection (orientation, hyperparameters, thresholds) sees validation only; test is scored
once with what validation chose, and only when the splits hold a test split.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from finscale.datasets.load import DatasetSplits
from finscale.datasets.windows import WindowedDataset
from finscale.evaluation.config import ABSOLUTE_SCORES, BaselinesConfig, ScoreColumn
from finscale.evaluation.metrics import (
    TaskMetrics,
    choose_threshold,
    log_loss,
    roc_auc,
    task_metrics,
    train_prevalence,
)
from finscale.evaluation.scored import BASELINE_PREFIX, ScoredTask

LOGISTIC_MAX_ITER = 2000  # lbfgs on a few hundred standardised columns converges well below


class BaselineError(ValueError):
    """A baseline that cannot be computed on these splits (bad lag, no usable task)."""


@dataclass(frozen=True)
class BaselineResult:
    """One baseline on one task: what validation chose, and its scores and metrics."""

    name: str
    task: str
    threshold: float
    settings: dict[str, str]
    val: ScoredTask
    test: ScoredTask | None
    val_metrics: TaskMetrics
    test_metrics: TaskMetrics | None


@dataclass(frozen=True)
class SkippedBaseline:
    """A baseline that did not run, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class BaselineRun:
    """Every baseline result of one dataset, plus the ones skipped with their reasons."""

    results: tuple[BaselineResult, ...]
    skipped: tuple[SkippedBaseline, ...]

    def get(self, name: str, task: str) -> BaselineResult:
        for result in self.results:
            if result.name == name and result.task == task:
                return result
        raise KeyError(f"no baseline {name} on task {task}")


@dataclass(frozen=True)
class _Split:
    """One split's samples as arrays: last rows, last rows with lags, labels, identity."""

    name: str
    dataset: WindowedDataset
    last: np.ndarray
    lagged: np.ndarray
    labels: np.ndarray


def _split(name: str, dataset: WindowedDataset, lags: tuple[int, ...]) -> _Split:
    too_far = [lag for lag in lags if not 0 < lag < dataset.context]
    if too_far:
        raise BaselineError(f"lags {too_far} must lie in 1..{dataset.context - 1}: the model "
                            f"sees {dataset.context} rows per window, a baseline no more")
    features = dataset.features.numpy()
    positions = dataset.positions.numpy()
    last = features[positions]
    lagged = np.concatenate([last, *(features[positions - lag] for lag in lags)], axis=1)
    return _Split(name=name, dataset=dataset, last=last, lagged=lagged,
                  labels=dataset.label_array().astype(np.float64))


def scored_task(dataset: WindowedDataset, split: str, task: str, predictor: str,
                scores: np.ndarray, *, probabilistic: bool) -> ScoredTask:
    """Scores of ``dataset``'s samples on ``task`` as a ``ScoredTask`` (models use it too)."""
    j = dataset.task_names.index(task)
    return ScoredTask(predictor=predictor, task=task, split=split,
                      sample_hash=dataset.sample_hash, end_dates=dataset.end_dates(),
                      labels=dataset.label_array()[:, j].astype(np.float64),
                      scores=np.asarray(scores, np.float64), probabilistic=probabilistic)


@dataclass(frozen=True)
class _Task:
    """One task across the splits (index, name, train prevalence)."""

    index: int
    name: str
    base_rate: float


def _result(name: str, task: _Task, splits: dict[str, _Split], scores: dict[str, np.ndarray],
            settings: dict[str, str], probabilistic: bool) -> BaselineResult:
    """Threshold on validation, then metrics on each split the scores cover."""
    predictor = BASELINE_PREFIX + name
    val = splits["val"]
    threshold = choose_threshold(val.labels[:, task.index], scores["val"])
    scored = {s: scored_task(splits[s].dataset, s, task.name, predictor, scores[s],
                             probabilistic=probabilistic) for s in scores}
    metrics = {s: task_metrics(task.name, s, scored[s].labels, scored[s].scores,
                               base_rate=task.base_rate, threshold=threshold,
                               probabilistic=probabilistic) for s in scores}
    return BaselineResult(name=predictor, task=task.name, threshold=threshold,
                          settings=settings, val=scored["val"], test=scored.get("test"),
                          val_metrics=metrics["val"], test_metrics=metrics.get("test"))


def _raw_column(splits: DatasetSplits, split: _Split, column: str) -> np.ndarray:
    """A feature's value before the robust scaling (affine, so exact up to the clip)."""
    stats = splits.stats
    k = stats.names.index(column)
    return split.last[:, split.dataset.feature_names.index(column)] * stats.scale[k] + \
        stats.median[k]


def _one_number(splits: DatasetSplits, parts: dict[str, _Split], task: _Task,
                score: ScoreColumn) -> BaselineResult | SkippedBaseline:
    names = parts["val"].dataset.feature_names
    column = next((c for c in score.columns if c in names), None)
    if column is None:
        return SkippedBaseline(BASELINE_PREFIX + score.name, f"none of the columns "
                               f"{list(score.columns)} is in this dataset ({score.description})")
    raw = {s: _raw_column(splits, part, column) for s, part in parts.items() if s != "train"}
    if score.name in ABSOLUTE_SCORES:
        raw = {s: np.abs(v) for s, v in raw.items()}
    sign = 1.0 if roc_auc(parts["val"].labels[:, task.index], raw["val"]) >= 0.5 else -1.0
    return _result(score.name, task, parts, {s: sign * v for s, v in raw.items()},
                   {"column": column, "orientation": "+" if sign > 0 else "-"},
                   probabilistic=False)


class _Classifier(Protocol):
    def fit(self, x: np.ndarray, y: np.ndarray) -> object: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


Fitter = Callable[[dict[str, float]], _Classifier]


def _tuned(name: str, task: _Task, parts: dict[str, _Split], make: Fitter,
           grid: dict[str, tuple[float, ...]]) -> BaselineResult:
    """Fit one model per grid point on train, keep the lowest validation log loss."""
    j = task.index
    best: tuple[float, dict[str, float], _Classifier] | None = None
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        model = make(params)
        model.fit(parts["train"].lagged, parts["train"].labels[:, j])
        val_probs = model.predict_proba(parts["val"].lagged)[:, 1]
        loss = log_loss(parts["val"].labels[:, j], val_probs)
        if best is None or loss < best[0]:
            best = (loss, params, model)
    assert best is not None  # grids are validated non-empty
    _, params, model = best
    scores = {s: model.predict_proba(p.lagged)[:, 1] for s, p in parts.items() if s != "train"}
    return _result(name, task, parts, scores, {k: f"{v:g}" for k, v in params.items()},
                   probabilistic=True)


def _logistic(params: dict[str, float]) -> _Classifier:
    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=params["C"], max_iter=LOGISTIC_MAX_ITER))


def _hgb(config: BaselinesConfig) -> Fitter:
    def make(params: dict[str, float]) -> _Classifier:
        return HistGradientBoostingClassifier(
            learning_rate=params["learning_rate"], max_leaf_nodes=int(params["max_leaf_nodes"]),
            max_iter=config.hgb_max_iter, min_samples_leaf=config.hgb_min_samples_leaf,
            early_stopping=False, random_state=config.seed)
    return make


def _tasks(parts: dict[str, _Split]) -> tuple[list[_Task], list[SkippedBaseline]]:
    tasks, skipped = [], []
    for j, name in enumerate(parts["train"].dataset.task_names):
        rate = train_prevalence(parts["train"].labels[:, j])
        if not 0 < rate < 1:
            skipped.append(SkippedBaseline(f"{BASELINE_PREFIX}* on {name}",
                                           f"train prevalence {rate:g}: one class only"))
        elif len(np.unique(parts["val"].labels[:, j])) < 2:
            skipped.append(SkippedBaseline(f"{BASELINE_PREFIX}* on {name}",
                                           "validation holds one class only: nothing to "
                                           "orient, tune or threshold on"))
        else:
            tasks.append(_Task(index=j, name=name, base_rate=rate))
    return tasks, skipped


def run_baselines(splits: DatasetSplits, config: BaselinesConfig) -> BaselineRun:
    """Every baseline on every task of ``splits``: val always, test when the splits hold it."""
    named = {"train": splits.train, "val": splits.val}
    if splits.has_test:
        named["test"] = splits.test
    parts = {s: _split(s, ds, config.lags) for s, ds in named.items()}
    with threadpool_limits(config.threads):
        return _run(splits, parts, config)


def _run(splits: DatasetSplits, parts: dict[str, _Split], config: BaselinesConfig
         ) -> BaselineRun:
    tasks, skipped = _tasks(parts)
    results: list[BaselineResult] = []
    scored = {s: p for s, p in parts.items() if s != "train"}
    for task in tasks:
        constant = {s: np.full(len(p.labels), task.base_rate) for s, p in scored.items()}
        results.append(_result("base-rate", task, parts, constant,
                               {"rate": f"{task.base_rate:.6f}"}, probabilistic=True))
        for score in config.scores:
            outcome = _one_number(splits, parts, task, score)
            if isinstance(outcome, SkippedBaseline):
                if task.index == tasks[0].index:  # one reason per score, not per task
                    skipped.append(outcome)
            else:
                results.append(outcome)
        results.append(_tuned("logistic", task, parts, _logistic,
                              {"C": config.logistic_c}))
        results.append(_tuned("hgb", task, parts, _hgb(config),
                              {"learning_rate": config.hgb_learning_rate,
                               "max_leaf_nodes": tuple(map(float, config.hgb_max_leaf_nodes))}))
    return BaselineRun(results=tuple(results), skipped=tuple(skipped))
