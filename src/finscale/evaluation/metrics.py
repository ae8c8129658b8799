"""Per-task metrics of one score vector against 0/1 labels, with the counts behind each.

Scores are probabilities (a model through ``training.metrics.probabilities``, or a fitted
baseline) or, for one-number baselines, any real score: then only the ranking and
threshold metrics are defined and the loss metrics are NaN. The base-rate log loss uses
the TRAIN prevalence, so the skill score 1 - loss / base-rate loss is 0 for a constant
predictor that knows only what training taught it, and negative for anything worse.
A precision or recall always travels with the number of positive calls behind it: a
precision of 1.0 on one call reads as such.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score

# probabilities are clipped here before a log: 1e-7 is below float32's resolution near 0.5
# and keeps one confident miss from making the loss infinite
PROBABILITY_EPS = 1e-7


class MetricInputError(ValueError):
    """Scores and labels that cannot be scored (shape, NaN, non-0/1 labels, logits)."""


def check_inputs(labels: np.ndarray, scores: np.ndarray, *, probabilistic: bool) -> None:
    """Raise ``MetricInputError`` naming what is wrong with a (labels, scores) pair."""
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise MetricInputError(f"labels {labels.shape} and scores {scores.shape} must be "
                               "1-D arrays of one length")
    if labels.size == 0:
        raise MetricInputError("no samples to score")
    if not np.isin(labels, (0, 1)).all():
        raise MetricInputError("labels must be 0/1")
    if not np.isfinite(scores).all():
        raise MetricInputError(f"{int((~np.isfinite(scores)).sum())} scores are NaN or inf")
    if probabilistic and (scores.min() < 0 or scores.max() > 1):
        raise MetricInputError(
            f"probabilities must lie in [0, 1], got {scores.min():.3g}..{scores.max():.3g}: "
            "logits? (training.metrics.probabilities is the one place that converts them)"
        )


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by ranks (ties averaged); NaN when one class is absent."""
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (the step-wise PR-AUC); NaN without positives."""
    if labels.sum() == 0:
        return math.nan
    return float(average_precision_score(labels, scores))


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy (natural log) with probabilities clipped to [eps, 1-eps]."""
    p = np.clip(probs.astype(np.float64), PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p)))


def brier(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean squared error of the probabilities."""
    return float(np.mean((probs.astype(np.float64) - labels) ** 2))


def skill(labels: np.ndarray, probs: np.ndarray, base_rate: float) -> float:
    """1 - log loss / the log loss of predicting ``base_rate`` (the train prevalence) for
    every sample: 0 for that constant predictor, negative for anything worse."""
    return 1 - log_loss(labels, probs) / log_loss(labels, np.full(labels.shape, base_rate))


def train_prevalence(train_labels: np.ndarray) -> float:
    """Share of positives in the training labels: the base rate every split is scored with."""
    if train_labels.size == 0:
        raise MetricInputError("no training labels: the base rate is undefined")
    return float(np.mean(train_labels))


@dataclass(frozen=True)
class Calls:
    """Decisions at one threshold (score >= threshold calls positive) and their counts."""

    threshold: float
    positive_calls: int
    true_positives: int
    positives: int
    negatives: int
    precision: float
    recall: float
    f1: float
    balanced_accuracy: float

    def describe(self) -> str:
        """``precision 0.50 on 4 calls, recall 0.10 of 20 positives``."""
        return (f"precision {self.precision:.2f} on {self.positive_calls} calls, recall "
                f"{self.recall:.2f} of {self.positives} positives")


def calls_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Calls:
    """Precision / recall / F1 / balanced accuracy of calling ``scores >= threshold``.

    Precision is NaN with no calls and recall NaN with no positives (never a silent 0 or 1).
    """
    called = scores >= threshold
    positives = int(labels.sum())
    negatives = labels.size - positives
    calls = int(called.sum())
    tp = int((called & (labels == 1)).sum())
    tn = int((~called & (labels == 0)).sum())
    precision = tp / calls if calls else math.nan
    recall = tp / positives if positives else math.nan
    f1 = 2 * tp / (calls + positives) if calls + positives else math.nan
    specificity = tn / negatives if negatives else math.nan
    return Calls(threshold=float(threshold), positive_calls=calls, true_positives=tp,
                 positives=positives, negatives=negatives, precision=precision, recall=recall,
                 f1=f1, balanced_accuracy=(recall + specificity) / 2)


def choose_threshold(val_labels: np.ndarray, val_scores: np.ndarray) -> float:
    """The score threshold with the best F1 on VALIDATION (ties: the higher threshold).

    Without validation positives no threshold is justified: +inf (no calls).
    """
    check_inputs(val_labels, val_scores, probabilistic=False)
    positives = int(val_labels.sum())
    if positives == 0:
        return math.inf
    order = np.argsort(-val_scores, kind="stable")
    sorted_scores = val_scores[order]
    tp = np.cumsum(val_labels[order])
    calls = np.arange(1, val_labels.size + 1)
    # only the last index of each run of tied scores is a reachable cut
    last_of_tie = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    f1 = np.where(last_of_tie, 2 * tp / (calls + positives), -1.0)
    return float(sorted_scores[int(np.argmax(f1))])


@dataclass(frozen=True)
class TaskMetrics:
    """Every metric of one task on one split; loss fields are NaN for non-probability scores."""

    task: str
    split: str
    samples: int
    positives: int
    roc_auc: float
    pr_auc: float
    log_loss: float
    brier: float
    base_rate: float
    base_log_loss: float
    skill: float
    base_brier: float
    brier_skill: float
    calls: Calls

    def flat(self, prefix: str = "") -> dict[str, float]:
        """``<prefix><metric>_<task>`` floats (MLflow metrics, results-table columns)."""
        values = {k: v for k, v in asdict(self).items() if k not in ("task", "split", "calls")}
        values.update({k: v for k, v in asdict(self.calls).items()})
        return {f"{prefix}{k}_{self.task}": float(v) for k, v in values.items()}


def task_metrics(
    task: str,
    split: str,
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    base_rate: float,
    threshold: float,
    probabilistic: bool = True,
) -> TaskMetrics:
    """All metrics of ``scores`` on one task. ``base_rate`` is the train prevalence and
    ``threshold`` was chosen on validation (``choose_threshold``)."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    check_inputs(labels, scores, probabilistic=probabilistic)
    if not 0 < base_rate < 1:
        raise MetricInputError(f"base rate {base_rate} must lie strictly between 0 and 1")
    constant = np.full_like(labels, base_rate)
    base_loss = log_loss(labels, constant)
    base_brier = brier(labels, constant)
    loss = log_loss(labels, scores) if probabilistic else math.nan
    squared = brier(labels, scores) if probabilistic else math.nan
    return TaskMetrics(
        task=task, split=split, samples=int(labels.size), positives=int(labels.sum()),
        roc_auc=roc_auc(labels, scores), pr_auc=pr_auc(labels, scores),
        log_loss=loss, brier=squared, base_rate=float(base_rate), base_log_loss=base_loss,
        skill=1 - loss / base_loss, base_brier=base_brier, brier_skill=1 - squared / base_brier,
        calls=calls_at(labels, scores, threshold),
    )


def wilson_interval(successes: np.ndarray, trials: np.ndarray, z: float) -> np.ndarray:
    """(k, 2) Wilson score interval of a binomial rate (sane at 0 and at small counts)."""
    trials = np.maximum(trials, 1)
    rate = successes / trials
    denom = 1 + z**2 / trials
    centre = (rate + z**2 / (2 * trials)) / denom
    half = z * np.sqrt(rate * (1 - rate) / trials + z**2 / (4 * trials**2)) / denom
    return np.stack([centre - half, centre + half], axis=1)


RELIABILITY_Z = 1.959963984540054  # two-sided 95% normal quantile for the bin intervals


def reliability_table(
    labels: np.ndarray, probs: np.ndarray, *, bins: int, strategy: str = "quantile"
) -> pd.DataFrame:
    """Calibration bins: count, mean predicted probability, observed rate and its 95% Wilson
    interval. Empty bins are dropped (as in ``sklearn.calibration.calibration_curve``)."""
    labels = np.asarray(labels, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    check_inputs(labels, probs, probabilistic=True)
    if strategy == "quantile":
        edges = np.percentile(probs, np.linspace(0, 100, bins + 1))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    else:
        raise MetricInputError(f"unknown reliability strategy {strategy!r}: quantile|uniform")
    index = np.searchsorted(edges[1:-1], probs)  # an edge value joins the lower bin
    count = np.bincount(index, minlength=bins)
    hits = np.bincount(index, weights=labels, minlength=bins)
    total = np.bincount(index, weights=probs, minlength=bins)
    keep = count > 0
    interval = wilson_interval(hits[keep], count[keep], RELIABILITY_Z)
    return pd.DataFrame({
        "bin": np.flatnonzero(keep), "lower": edges[:-1][keep], "upper": edges[1:][keep],
        "count": count[keep], "mean_predicted": total[keep] / count[keep],
        "observed_rate": hits[keep] / count[keep],
        "observed_low": interval[:, 0], "observed_high": interval[:, 1],
    })


RELIABILITY_KEYS = {"mean_predicted": "pred", "observed_rate": "obs", "count": "n"}


def reliability_metrics(table: pd.DataFrame, prefix: str, task: str) -> dict[str, float]:
    """A reliability table as flat metrics ``<prefix>rel_{pred,obs,n}_<bin>_<task>``, so a
    run logs it beside its other metrics and ``results`` reads it back."""
    out: dict[str, float] = {}
    for _, row in table.iterrows():
        for column, short in RELIABILITY_KEYS.items():
            out[f"{prefix}rel_{short}_{int(row['bin'])}_{task}"] = float(row[column])
    return out
