"""Metrics equal scikit-learn's on random data; skill 0 for the train-prevalence constant;
every precision carries its call count; thresholds come from validation only."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from finscale.evaluation.metrics import (
    MetricInputError,
    calls_at,
    choose_threshold,
    reliability_table,
    task_metrics,
    train_prevalence,
)


def _random(seed: int, n: int = 700, rate: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < rate).astype(np.float64)
    probs = np.clip(0.2 + 0.15 * (labels - 0.2) + rng.normal(0, 0.12, n), 0.001, 0.999)
    return labels, np.clip(np.round(probs, 2), 0.01, 0.99)  # rounding: ties for AUC to average


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_scikit_learn(seed: int) -> None:
    labels, probs = _random(seed)
    threshold = 0.3
    m = task_metrics("t", "test", labels, probs, base_rate=0.25, threshold=threshold)
    called = (probs >= threshold).astype(int)
    assert m.roc_auc == pytest.approx(roc_auc_score(labels, probs), abs=1e-12)
    assert m.pr_auc == pytest.approx(average_precision_score(labels, probs), abs=1e-12)
    assert m.log_loss == pytest.approx(log_loss(labels, probs), abs=1e-9)
    assert m.brier == pytest.approx(brier_score_loss(labels, probs), abs=1e-12)
    assert m.calls.precision == pytest.approx(precision_score(labels, called))
    assert m.calls.recall == pytest.approx(recall_score(labels, called))
    assert m.calls.f1 == pytest.approx(f1_score(labels, called))
    assert m.calls.balanced_accuracy == pytest.approx(balanced_accuracy_score(labels, called))
    assert m.calls.positive_calls == int(called.sum())
    assert m.calls.true_positives == int((called * labels).sum())
    assert m.base_log_loss == pytest.approx(log_loss(labels, np.full_like(probs, 0.25)))
    assert m.skill == pytest.approx(1 - m.log_loss / m.base_log_loss)


def test_constant_train_prevalence_has_zero_skill() -> None:
    rng = np.random.default_rng(3)
    train = (rng.random(2000) < 0.3).astype(float)
    test, _ = _random(4, rate=0.1)  # a different test prevalence: skill is still exactly 0
    rate = train_prevalence(train)
    m = task_metrics("t", "test", test, np.full(test.size, rate), base_rate=rate,
                     threshold=0.5)
    assert m.skill == pytest.approx(0.0, abs=1e-12)
    assert m.brier_skill == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(m.roc_auc) is False and m.roc_auc == pytest.approx(0.5)
    # a worse constant has negative skill
    worse = task_metrics("t", "test", test, np.full(test.size, 0.6), base_rate=rate,
                         threshold=0.5)
    assert worse.skill < 0


def test_one_call_precision_says_one_call() -> None:
    labels = np.array([1, 0, 0, 1, 0, 0, 0, 0], dtype=float)
    scores = np.array([0.9, 0.1, 0.2, 0.3, 0.1, 0.2, 0.1, 0.2])
    calls = calls_at(labels, scores, 0.8)
    assert (calls.precision, calls.positive_calls, calls.true_positives) == (1.0, 1, 1)
    assert calls.describe() == "precision 1.00 on 1 calls, recall 0.50 of 2 positives"
    none = calls_at(labels, scores, 0.95)
    assert none.positive_calls == 0 and math.isnan(none.precision)


def test_threshold_maximises_validation_f1() -> None:
    labels, probs = _random(5)
    chosen = choose_threshold(labels, probs)
    precision, recall, thresholds = precision_recall_curve(labels, probs)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    assert calls_at(labels, probs, chosen).f1 == pytest.approx(f1.max())
    assert chosen in set(thresholds)
    assert choose_threshold(np.zeros(5), np.arange(5.0)) == math.inf


def test_one_number_scores_have_ranks_but_no_losses() -> None:
    labels, probs = _random(6)
    vix_like = 10 + 40 * probs  # not a probability
    m = task_metrics("t", "test", labels, vix_like, base_rate=0.2, threshold=20.0,
                     probabilistic=False)
    assert m.roc_auc == pytest.approx(roc_auc_score(labels, vix_like))
    assert math.isnan(m.log_loss) and math.isnan(m.skill)


def test_logits_and_bad_inputs_are_refused() -> None:
    labels, probs = _random(7)
    with pytest.raises(MetricInputError, match="logits"):
        task_metrics("t", "test", labels, probs * 6 - 3, base_rate=0.2, threshold=0.5)
    with pytest.raises(MetricInputError, match="NaN"):
        task_metrics("t", "test", labels, np.where(labels > 0, np.nan, probs), base_rate=0.2,
                     threshold=0.5)
    with pytest.raises(MetricInputError, match="0/1"):
        task_metrics("t", "test", labels * 2, probs, base_rate=0.2, threshold=0.5)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_table_equals_calibration_curve(strategy: str) -> None:
    labels, probs = _random(8, n=2000)
    table = reliability_table(labels, probs, bins=8, strategy=strategy)
    observed, predicted = calibration_curve(labels, probs, n_bins=8, strategy=strategy)
    np.testing.assert_allclose(table["observed_rate"], observed)
    np.testing.assert_allclose(table["mean_predicted"], predicted)
    assert table["count"].sum() == labels.size
    assert ((table["observed_low"] <= table["observed_rate"])
            & (table["observed_rate"] <= table["observed_high"])).all()
