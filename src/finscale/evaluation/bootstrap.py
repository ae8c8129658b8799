"""Uncertainty: circular block bootstrap over days, paired comparisons, replicate intervals.

Samples overlap in time: a label at horizon H looks at the next H rows, so neighbouring
samples share label days, and the volatility these labels mostly measure clusters for
weeks. Resampling single samples would treat ~1500 dependent samples as independent and
give intervals far too narrow. The bootstrap therefore resamples whole days (all samples
ending on a day stay together, which keeps pooled tickers together) in circular blocks of
consecutive days, ``block_days`` >= horizon + margin. Seeds and walk-forward folds are
replicates: their spread is added to the day-sampling error (``replicate_interval``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from finscale.evaluation.scored import ScoredTask, require_same_samples

Metric = Callable[[np.ndarray, np.ndarray], float]


class BootstrapError(ValueError):
    """A bootstrap that cannot give a meaningful interval (block too short, too few days)."""


def block_days(horizon: int, margin_days: int) -> int:
    """Block length in rows of the timescale: the horizon plus a margin.

    A block shorter than the horizon would cut through label windows that share future
    days; the margin (``BootstrapConfig.block_margin_days``) covers the volatility
    clustering beyond the label window, which the threshold labels inherit.
    """
    if horizon < 1 or margin_days < 0:
        raise BootstrapError(f"horizon {horizon} must be >= 1 and margin {margin_days} >= 0")
    return horizon + margin_days


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval and the bootstrap's standard error."""

    estimate: float
    low: float
    high: float
    level: float
    se: float
    replicates: int
    dropped: int = 0  # resamples where the metric was undefined (e.g. one class only)

    def describe(self, digits: int = 3) -> str:
        """``0.712 (95% CI 0.690 to 0.735)``."""
        return (f"{self.estimate:.{digits}f} ({self.level:.0%} CI {self.low:.{digits}f} to "
                f"{self.high:.{digits}f})")


@dataclass(frozen=True)
class Comparison:
    """Paired difference ``a - b`` of one metric on the same samples."""

    a: str
    b: str
    metric: str
    difference: Interval
    p_value: float


class DayBlockResampler:
    """Circular block resampling of the days of a sample set.

    Days are the distinct end dates in time order; a resample lays ceil(D / block) blocks
    of ``block`` consecutive days (wrapping past the last day) and keeps the first D days,
    then takes every sample of each drawn day.
    """

    def __init__(self, end_dates: np.ndarray, *, block: int, horizon: int) -> None:
        if block < horizon:
            raise BootstrapError(f"block of {block} days is shorter than the horizon {horizon}:"
                                 " it would cut through overlapping label windows")
        days, day_of_sample = np.unique(np.asarray(end_dates), return_inverse=True)
        if days.size < 2 * block:
            raise BootstrapError(f"{days.size} days hold fewer than two blocks of {block}: "
                                 "too few to resample")
        self.block = block
        self.n_days = int(days.size)
        self.order = np.argsort(day_of_sample, kind="stable")
        self.counts = np.bincount(day_of_sample, minlength=self.n_days)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])

    def draw_days(self, rng: np.random.Generator) -> np.ndarray:
        """Day numbers of one resample (length D)."""
        n_blocks = math.ceil(self.n_days / self.block)
        first = rng.integers(0, self.n_days, size=n_blocks)
        days = (first[:, None] + np.arange(self.block)[None, :]) % self.n_days
        return days.reshape(-1)[: self.n_days]

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Sample indices of one resample (every sample of each drawn day)."""
        days = self.draw_days(rng)
        lengths = self.counts[days]
        ends = np.cumsum(lengths)
        # position within each day's run of samples, then offset to that day's start
        within = np.arange(ends[-1]) - np.repeat(ends - lengths, lengths)
        return self.order[np.repeat(self.starts[days], lengths) + within]


def percentile_interval(estimate: float, draws: np.ndarray, level: float) -> Interval:
    """Percentile interval of the finite bootstrap draws (NaN draws counted as dropped)."""
    finite = draws[np.isfinite(draws)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(estimate=float(estimate), low=float(low), high=float(high), level=level,
                    se=float(finite.std(ddof=1)), replicates=int(finite.size),
                    dropped=int(draws.size - finite.size))


def _percentile_interval(
    estimate: float, draws: np.ndarray, level: float, total: int
) -> Interval:
    interval = percentile_interval(estimate, draws, level)
    if interval.replicates < total / 2:
        raise BootstrapError(f"the metric was undefined in {interval.dropped} of {total} "
                             "resamples: too few positives or negatives for an interval")
    return interval


def bootstrap_metric(
    metric: Metric,
    scored: ScoredTask,
    resampler: DayBlockResampler,
    *,
    replicates: int,
    level: float,
    seed: int,
) -> Interval:
    """``metric(labels, scores)`` with a percentile interval over day-block resamples."""
    rng = np.random.default_rng(seed)
    draws = np.empty(replicates)
    for r in range(replicates):
        index = resampler.draw(rng)
        draws[r] = metric(scored.labels[index], scored.scores[index])
    return _percentile_interval(metric(scored.labels, scored.scores), draws, level, replicates)


def paired_comparison(
    metric: Metric,
    metric_name: str,
    a: ScoredTask,
    b: ScoredTask,
    resampler: DayBlockResampler,
    *,
    replicates: int,
    level: float,
    seed: int,
) -> Comparison:
    """Difference ``metric(a) - metric(b)`` on the same resampled days, its percentile
    interval and a two-sided bootstrap p-value for "no difference".

    The p-value is twice the smaller share of resampled differences on either side of 0
    (with the +1 correction, so it is never exactly 0): it agrees with the interval, which
    excludes 0 exactly when p < 1 - level. Raises ``SampleMismatchError`` unless a and b
    scored the same samples.
    """
    require_same_samples(a, b)
    rng = np.random.default_rng(seed)
    draws = np.empty(replicates)
    for r in range(replicates):
        index = resampler.draw(rng)
        labels = a.labels[index]
        draws[r] = metric(labels, a.scores[index]) - metric(labels, b.scores[index])
    estimate = metric(a.labels, a.scores) - metric(b.labels, b.scores)
    interval = _percentile_interval(estimate, draws, level, replicates)
    finite = draws[np.isfinite(draws)]
    below = (np.count_nonzero(finite <= 0) + 1) / (finite.size + 1)
    above = (np.count_nonzero(finite >= 0) + 1) / (finite.size + 1)
    return Comparison(a=a.predictor, b=b.predictor, metric=metric_name, difference=interval,
                      p_value=float(min(1.0, 2 * min(below, above))))


def replicate_interval(
    values: Sequence[float], *, level: float, sampling_se: Sequence[float] | None = None
) -> Interval:
    """Mean over replicates (seeds, folds) with a t interval.

    The variance of the mean is spread^2 / n plus the mean day-sampling variance: replicates
    score the same test days, so the day-sampling error is shared and does not shrink with
    n. With one replicate only the sampling error remains (NaN without it).
    """
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0 or not np.isfinite(array).all():
        raise BootstrapError(f"replicate values must be finite and non-empty, got {values}")
    n = array.size
    spread = array.var(ddof=1) / n if n > 1 else 0.0
    shared = float(np.mean(np.square(sampling_se))) if sampling_se is not None else 0.0
    se = math.sqrt(spread + shared) if (n > 1 or sampling_se is not None) else math.nan
    # t with n-1 df for the seed spread; normal when only the bootstrap error is known
    quantile = stats.t.ppf(0.5 + level / 2, n - 1) if n > 1 else stats.norm.ppf(0.5 + level / 2)
    mean = float(array.mean())
    return Interval(estimate=mean, low=mean - quantile * se, high=mean + quantile * se,
                    level=level, se=se, replicates=n)
