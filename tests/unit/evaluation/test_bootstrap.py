"""Block bootstrap over days: blocks of whole days, honest standard errors on dependent
samples, paired comparisons on the same samples only, seeds and folds as replicates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from finscale.evaluation.bootstrap import (
    BootstrapError,
    DayBlockResampler,
    block_days,
    bootstrap_metric,
    paired_comparison,
    replicate_interval,
)
from finscale.evaluation.metrics import log_loss, roc_auc
from finscale.evaluation.scored import SampleMismatchError, ScoredTask

DAYS = np.datetime64("2019-01-01") + np.arange(1500)


def _regime_series(rng: np.random.Generator, n: int = 1500, phi: float = 0.95
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Labels and a score that both follow a persistent AR(1) regime (volatility-like)."""
    shocks = rng.normal(0, np.sqrt(1 - phi**2), n)
    regime = np.empty(n)
    regime[0] = rng.normal()
    for t in range(1, n):
        regime[t] = phi * regime[t - 1] + shocks[t]
    labels = (regime + rng.normal(0, 1, n) > 1.0).astype(float)
    return labels, regime + rng.normal(0, 1, n)


def _scored(name: str, labels: np.ndarray, scores: np.ndarray, sample_hash: str = "h"
            ) -> ScoredTask:
    return ScoredTask(predictor=name, task="y", split="test", sample_hash=sample_hash,
                      end_dates=DAYS[: len(labels)], labels=labels, scores=scores,
                      probabilistic=False)


def test_block_is_horizon_plus_margin_and_never_shorter_than_the_horizon() -> None:
    assert block_days(5, 40) == 45
    with pytest.raises(BootstrapError, match="shorter than the horizon 5"):
        DayBlockResampler(DAYS, block=4, horizon=5)
    with pytest.raises(BootstrapError, match="fewer than two blocks"):
        DayBlockResampler(DAYS[:50], block=30, horizon=1)


def test_resample_keeps_days_whole_and_blocks_consecutive() -> None:
    # two tickers per day (pooled): a drawn day brings both of its samples
    dates = np.repeat(DAYS[:300], 2)
    resampler = DayBlockResampler(dates, block=25, horizon=5)
    rng = np.random.default_rng(0)
    index = resampler.draw(rng)
    assert index.size == dates.size
    drawn_days = dates[index]
    assert (drawn_days[0::2] == drawn_days[1::2]).all()
    assert (index[0::2] != index[1::2]).all()  # both tickers, not one twice
    day_numbers = (drawn_days[0::2] - DAYS[0]).astype(int)
    steps = np.diff(day_numbers).reshape(-1)
    # inside a block the next day follows (or wraps from the last to the first day)
    inside = np.ones(steps.size, dtype=bool)
    inside[24::25] = False
    assert set(np.unique(steps[inside])) <= {1, -299}


def test_block_bootstrap_se_matches_the_true_spread_of_dependent_samples() -> None:
    rng = np.random.default_rng(1)
    true_sd = np.std([roc_auc(*_regime_series(rng)) for _ in range(200)])
    block_se, iid_se = [], []
    for k in range(4):
        scored = _scored("m", *_regime_series(rng))
        for block, out in ((41, block_se), (1, iid_se)):
            resampler = DayBlockResampler(scored.end_dates, block=block, horizon=1)
            out.append(bootstrap_metric(roc_auc, scored, resampler, replicates=300,
                                        level=0.95, seed=k).se)
    assert 0.75 < np.mean(block_se) / true_sd < 1.3
    assert np.mean(iid_se) / true_sd < 0.75  # resampling single days is overconfident


def test_interval_is_around_the_estimate() -> None:
    rng = np.random.default_rng(2)
    scored = _scored("m", *_regime_series(rng))
    resampler = DayBlockResampler(scored.end_dates, block=41, horizon=1)
    interval = bootstrap_metric(roc_auc, scored, resampler, replicates=200, level=0.9, seed=0)
    assert interval.estimate == pytest.approx(roc_auc_score(scored.labels, scored.scores))
    assert interval.low < interval.estimate < interval.high
    assert interval.replicates == 200 and interval.level == 0.9


def test_paired_comparison_of_a_better_score_and_of_itself() -> None:
    rng = np.random.default_rng(3)
    labels, score = _regime_series(rng)
    better = _scored("better", labels, score)
    noisier = _scored("noisier", labels, score + rng.normal(0, 2, labels.size))
    resampler = DayBlockResampler(DAYS, block=41, horizon=1)
    gap = paired_comparison(roc_auc, "auc", better, noisier, resampler, replicates=300,
                            level=0.95, seed=0)
    assert gap.difference.estimate > 0 and gap.difference.low > 0 and gap.p_value < 0.01
    same = paired_comparison(roc_auc, "auc", better, better, resampler, replicates=100,
                             level=0.95, seed=0)
    assert same.difference.estimate == 0 and same.p_value == 1.0


def test_paired_comparison_refuses_different_samples() -> None:
    rng = np.random.default_rng(4)
    labels, score = _regime_series(rng)
    resampler = DayBlockResampler(DAYS, block=41, horizon=1)
    other = _scored("baseline-vix_level", labels, score, sample_hash="other")
    with pytest.raises(SampleMismatchError, match="not the same samples"):
        paired_comparison(roc_auc, "auc", _scored("m", labels, score), other, resampler,
                          replicates=50, level=0.95, seed=0)
    flipped = _scored("baseline-vix_level", 1 - labels, score)
    with pytest.raises(SampleMismatchError, match="not their labels"):
        paired_comparison(roc_auc, "auc", _scored("m", labels, score), flipped, resampler,
                          replicates=50, level=0.95, seed=0)


def test_losses_bootstrap_too() -> None:
    rng = np.random.default_rng(5)
    labels, score = _regime_series(rng)
    probs = ScoredTask(predictor="m", task="y", split="test", sample_hash="h", end_dates=DAYS,
                       labels=labels, scores=1 / (1 + np.exp(-score)), probabilistic=True)
    resampler = DayBlockResampler(DAYS, block=41, horizon=1)
    interval = bootstrap_metric(log_loss, probs, resampler, replicates=200, level=0.95, seed=0)
    assert interval.low < interval.estimate < interval.high and interval.dropped == 0


def test_replicates_add_their_spread_to_the_shared_sampling_error() -> None:
    values = [0.70, 0.72, 0.69, 0.71]
    interval = replicate_interval(values, level=0.95, sampling_se=[0.01] * 4)
    se = np.sqrt(np.var(values, ddof=1) / 4 + 0.01**2)
    half = stats.t.ppf(0.975, 3) * se
    assert interval.se == pytest.approx(se)
    assert (interval.low, interval.high) == pytest.approx((0.705 - half, 0.705 + half))
    single = replicate_interval([0.7], level=0.95, sampling_se=[0.02])
    assert single.high - single.low == pytest.approx(2 * 1.959964 * 0.02, rel=1e-5)
    assert np.isnan(replicate_interval([0.7], level=0.95).se)
