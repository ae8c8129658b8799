"""Scaling fits recover known laws, their bootstrap intervals cover the truth, too few
points are refused, and the outcome label follows alpha's interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finscale.evaluation.bootstrap import Interval
from finscale.evaluation.scaling import (
    ScalingFitError,
    ScalingPoints,
    fit_power,
    fit_saturating,
    fit_scaling,
    outcome_of,
    pooled_log_residuals,
    pooled_relative_spread,
)

BUDGETS = np.logspace(4, 7, 6)  # 10k .. 10M


def _points(rng: np.random.Generator, *, alpha: float, a: float = 2.0, e: float = 0.0,
            seeds: int = 3, noise: float = 0.03, budgets: np.ndarray = BUDGETS
            ) -> ScalingPoints:
    x = np.repeat(budgets, seeds)
    y = (e + a * x**-alpha) * np.exp(rng.normal(0, noise, x.size))
    return ScalingPoints.from_rows("n_parameters", "test_loss", x, y)


def test_power_law_recovers_alpha_and_a() -> None:
    fit = fit_power(_points(np.random.default_rng(0), alpha=0.1, noise=0.002), replicates=200,
                    level=0.95, seed=0)
    assert fit.params["alpha"] == pytest.approx(0.1, abs=0.003)
    assert fit.params["A"] == pytest.approx(2.0, rel=0.05)
    assert fit.alpha.high - fit.alpha.low < 0.002 and fit.r2 > 0.99


def test_saturating_law_recovers_e_and_alpha_and_is_preferred() -> None:
    points = _points(np.random.default_rng(1), alpha=0.3, e=0.3, noise=0.005)
    result = fit_scaling(points, replicates=150, level=0.95, seed=0)
    assert result.saturating is not None and result.saturating_note == ""
    assert result.saturating.params["E"] == pytest.approx(0.3, abs=0.01)
    assert result.saturating.params["alpha"] == pytest.approx(0.3, abs=0.03)
    assert result.saturating.alpha.low < 0.3 < result.saturating.alpha.high
    assert result.preferred("aic") == result.preferred("bic") == "saturating"
    # the pure law bends to the floor: a much smaller apparent exponent
    assert result.power.params["alpha"] < 0.1 and result.outcome == "scaling"


def test_bootstrap_interval_covers_the_true_alpha() -> None:
    rng = np.random.default_rng(2)
    repeats, hits = 150, 0
    for r in range(repeats):
        fit = fit_power(_points(rng, alpha=0.1), replicates=200, level=0.95, seed=r)
        hits += fit.alpha.low <= 0.1 <= fit.alpha.high
    assert hits / repeats >= 0.85


def test_single_seed_intervals_use_the_day_sampling_error() -> None:
    rng = np.random.default_rng(3)
    repeats, hits = 100, 0
    for r in range(repeats):
        x = BUDGETS
        truth = 2.0 * x**-0.1
        se = 0.03 * truth
        points = ScalingPoints.from_rows("n_parameters", "test_loss", x,
                                         truth + rng.normal(0, se), sampling_se=se)
        fit = fit_power(points, replicates=200, level=0.95, seed=r)
        hits += fit.alpha.low <= 0.1 <= fit.alpha.high
    assert hits / repeats >= 0.85


def test_too_few_points_are_refused() -> None:
    rng = np.random.default_rng(4)
    three = _points(rng, alpha=0.1, budgets=BUDGETS[:3])
    with pytest.raises(ScalingFitError, match=r"needs >= 4 distinct n_parameters values, got 3"):
        fit_power(three, replicates=50, level=0.95, seed=0)
    four = _points(rng, alpha=0.1, budgets=BUDGETS[:4])
    with pytest.raises(ScalingFitError, match=r"needs >= 5 .* got 4"):
        fit_saturating(four, replicates=50, level=0.95, seed=0, start_alpha=0.1)
    result = fit_scaling(four, replicates=50, level=0.95, seed=0)
    assert result.saturating is None and "got 4" in result.saturating_note
    assert result.preferred("aic") == "power"


def test_flat_and_inverse_curves_are_labelled() -> None:
    rng = np.random.default_rng(5)
    flat = fit_power(_points(rng, alpha=0.0, a=0.69), replicates=200, level=0.95, seed=0)
    assert outcome_of(flat.alpha) == "flat"
    inverse = fit_power(_points(rng, alpha=-0.05, a=0.3, noise=0.01), replicates=200,
                        level=0.95, seed=0)
    assert outcome_of(inverse.alpha) == "inverse"
    assert outcome_of(Interval(0.1, 0.02, 0.2, 0.95, 0.05, 100)) == "scaling"


def test_non_positive_errors_are_refused() -> None:
    with pytest.raises(ScalingFitError, match="1 - AUC"):
        ScalingPoints.from_rows("n_parameters", "test_auc", BUDGETS, np.zeros(BUDGETS.size))


def test_one_seed_without_errors_falls_back_to_residuals() -> None:
    rng = np.random.default_rng(6)
    points = _points(rng, alpha=0.1, seeds=1)
    fit = fit_power(points, replicates=200, level=0.95, seed=0)
    assert fit.alpha.high - fit.alpha.low > 0  # an interval, not a point
    low, high = fit.band(BUDGETS, 0.95)
    assert (low <= fit.predict(BUDGETS) + 1e-12).all() and (fit.predict(BUDGETS) <= high).all()
    assert not math.isnan(fit.aic)


def test_replicate_residuals_are_pooled_with_unbiased_variance() -> None:
    rng = np.random.default_rng(7)
    groups = tuple(np.exp(rng.normal(0, 0.1, 2)) for _ in range(4000))  # pairs of seeds
    residuals = pooled_log_residuals(groups)
    assert residuals.size == 8000
    assert np.mean(residuals**2) == pytest.approx(0.1**2, rel=0.05)
    assert pooled_relative_spread(groups) == pytest.approx(0.1, rel=0.03)
    assert pooled_log_residuals((np.array([1.0]),)).size == 0
