"""Scaling-law fits along any axis (parameters N, training rows D, features F, horizon H).

Two laws of an error-like metric y > 0 (loss, 1 - AUC, 1 - skill):

- pure power law  y = A x^-alpha, fitted by weighted least squares in log space (exact:
  it is a straight line there);
- saturating law  y = E + A x^-alpha, fitted with ``scipy.optimize.curve_fit`` in linear
  space (an irreducible E has no log-linear form), E >= 0.

Replicates (seeds, folds) at one x become one point: their mean, weighted by
1 / sigma^2 with sigma^2 = spread^2 / n + the mean day-bootstrap variance of the rows
(the spread is pooled over points: 3-5 seeds estimate it badly one point at a time).
alpha's interval comes from refitting on bootstrap draws of every point: its replicates
drawn from the pooled replicate residuals (rescaled by sqrt(n / (n - 1)) so the draws'
variance is unbiased) plus the day-sampling error. Day-sampling errors are shared by all
budgets (same test days) but are drawn independently per point here, which widens the
interval: the safe side. With neither replicates nor sampling errors the fit residuals
are resampled (wild bootstrap).
The outcome label reads the pure law's alpha interval: scaling (above 0), inverse (below
0) or flat (spans 0). A law with fewer distinct x than parameters + 2 is refused.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from finscale.evaluation.bootstrap import Interval, percentile_interval

Outcome = Literal["scaling", "flat", "inverse"]
LawName = Literal["power", "saturating"]
LAW_PARAMETERS: dict[LawName, tuple[str, ...]] = {
    "power": ("A", "alpha"),
    "saturating": ("E", "A", "alpha"),
}
# an exponent outside +-ALPHA_BOUND is not a scaling law but a failed fit
ALPHA_BOUND = 5.0
# ties of the information criteria: an AIC/BIC difference below 2 is no preference
IC_TIE = 2.0
# relative floor on a point's sigma, so replicates that agree exactly do not get infinite weight
SIGMA_FLOOR = 1e-3


class ScalingFitError(ValueError):
    """A scaling fit that cannot be made honestly (too few points, non-positive errors)."""


@dataclass(frozen=True)
class ScalingPoints:
    """Distinct x with the mean, sigma and replicate rows of an error-like metric."""

    axis: str
    metric: str
    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray
    rows: tuple[np.ndarray, ...]
    sampling_se: np.ndarray  # per point: RMS of its rows' day-bootstrap SE (0 when unknown)

    @property
    def n_points(self) -> int:
        return int(self.x.size)

    @classmethod
    def from_rows(
        cls, axis: str, metric: str, x: np.ndarray, y: np.ndarray,
        sampling_se: np.ndarray | None = None,
    ) -> ScalingPoints:
        """Group replicate rows by x; refuses NaN, non-positive x or y."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        se = (np.zeros_like(y) if sampling_se is None
              else np.nan_to_num(np.asarray(sampling_se, np.float64), nan=0.0))
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ScalingFitError(f"{metric} vs {axis}: NaN or inf among the values")
        if (x <= 0).any() or (y <= 0).any():
            raise ScalingFitError(f"{metric} vs {axis}: a power law needs positive x and "
                                  "errors (fit 1 - AUC or 1 - skill, not AUC or skill)")
        distinct = np.unique(x)
        groups = tuple(y[x == v] for v in distinct)
        shared = np.array([math.sqrt(np.mean(se[x == v] ** 2)) for v in distinct])
        means = np.array([g.mean() for g in groups])
        sizes = np.array([g.size for g in groups])
        relative = pooled_relative_spread(groups)
        sigma = means * np.sqrt(relative**2 / sizes + (shared / means) ** 2)
        if not (sigma > 0).any():
            sigma = np.ones_like(means)  # nothing known: equal weights
        sigma = np.maximum(sigma, SIGMA_FLOOR * means)
        return cls(axis=axis, metric=metric, x=distinct, y=means, sigma=sigma,
                   rows=groups, sampling_se=shared)


def pooled_relative_spread(groups: tuple[np.ndarray, ...]) -> float:
    """The replicates' spread relative to their mean (std of log y), pooled over points.

    Pooled because 3-5 seeds per point estimate a spread badly: weighting each point by its
    own noisy spread gives the luckiest point the most weight and intervals that are too
    narrow (in simulation, 77% coverage of a 95% interval with 4 seeds per point).
    """
    df = sum(g.size - 1 for g in groups)
    if df == 0:
        return 0.0
    squares = sum(float(((np.log(g) - np.log(g).mean()) ** 2).sum()) for g in groups)
    return math.sqrt(squares / df)


def require_points(points: ScalingPoints, law: LawName) -> None:
    """Refuse a law with fewer distinct x than its parameters + 2."""
    needed = len(LAW_PARAMETERS[law]) + 2
    if points.n_points < needed:
        shown = ", ".join(f"{v:g}" for v in points.x)
        raise ScalingFitError(
            f"{law} law of {points.metric} vs {points.axis} has {len(LAW_PARAMETERS[law])} "
            f"parameters and needs >= {needed} distinct {points.axis} values, got "
            f"{points.n_points} ({shown}): too few to fit and still test the fit"
        )


def power_law(x: np.ndarray, a: float, alpha: float) -> np.ndarray:
    return a * np.power(x, -alpha)


def saturating_law(x: np.ndarray, e: float, a: float, alpha: float) -> np.ndarray:
    return e + a * np.power(x, -alpha)


def _log_weights(points: ScalingPoints) -> np.ndarray:
    """Weights of log y: the sigma of log y is sigma / y (fixed from the observed points)."""
    w = (points.y / points.sigma) ** 2
    return w / w.sum()


def _fit_power_many(x: np.ndarray, ys: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted line in log-log space for each row of ``ys`` (B, k): (B, 2) of (A, alpha)."""
    lx = np.log(x)
    ly = np.log(np.atleast_2d(ys))
    mx = (w * lx).sum()
    my = ly @ w
    slope = ((ly - my[:, None]) * (w * (lx - mx))).sum(axis=1) / (w * (lx - mx) ** 2).sum()
    intercept = my - slope * mx
    return np.stack([np.exp(intercept), -slope], axis=1)


def _fit_saturating(x: np.ndarray, y: np.ndarray, sigma: np.ndarray,
                    start: tuple[float, float, float]) -> np.ndarray:
    """curve_fit of E + A x^-alpha with E >= 0, |alpha| <= ALPHA_BOUND; x scaled by its
    geometric mean so A stays near the data's scale."""
    scale = math.exp(np.log(x).mean())
    e0, a0, alpha0 = start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        params, _ = curve_fit(
            saturating_law, x / scale, y, p0=(e0, a0 * scale**-alpha0, alpha0), sigma=sigma,
            bounds=((0.0, 0.0, -ALPHA_BOUND), (np.inf, np.inf, ALPHA_BOUND)), maxfev=20000,
        )
    e, a_scaled, alpha = params
    return np.array([e, a_scaled * scale**alpha, alpha])


@dataclass(frozen=True)
class LawFit:
    """One fitted law: parameters, alpha's interval, goodness of fit, bootstrap draws."""

    law: LawName
    params: dict[str, float]
    alpha: Interval
    r2: float
    aic: float
    bic: float
    draws: np.ndarray  # (B, n_params) refits on bootstrap draws (for the plot's CI band)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return _curve(self.law, np.asarray(x, np.float64), np.array(list(self.params.values())))

    def band(self, x: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of the bootstrap curves at ``x``."""
        curves = np.stack([_curve(self.law, np.asarray(x, np.float64), p) for p in self.draws])
        tail = (1 - level) / 2 * 100
        low, high = np.percentile(curves, [tail, 100 - tail], axis=0)
        return low, high


def _curve(law: LawName, x: np.ndarray, params: np.ndarray) -> np.ndarray:
    return power_law(x, *params) if law == "power" else saturating_law(x, *params)


def _goodness(points: ScalingPoints, law: LawName, params: np.ndarray
              ) -> tuple[float, float, float]:
    """Weighted R^2, AIC and BIC in linear space (the same scale for both laws)."""
    w = 1 / points.sigma**2
    residual = points.y - _curve(law, points.x, params)
    wrss = float((w * residual**2).sum())
    centre = float((w * points.y).sum() / w.sum())
    wtss = float((w * (points.y - centre) ** 2).sum())
    k, p = points.n_points, len(LAW_PARAMETERS[law])
    loglik_term = k * math.log(max(wrss, 1e-300) / k)
    r2 = 1 - wrss / wtss if wtss > 0 else math.nan
    return r2, loglik_term + 2 * p, loglik_term + p * math.log(k)


def pooled_log_residuals(groups: tuple[np.ndarray, ...]) -> np.ndarray:
    """Every replicate's log deviation from its point's mean, scaled by sqrt(n / (n - 1))
    so their variance is unbiased; pooled over points like the weights."""
    parts = [(np.log(g) - np.log(g).mean()) * math.sqrt(g.size / (g.size - 1))
             for g in groups if g.size > 1]
    return np.concatenate(parts) if parts else np.empty(0)


def bootstrap_draws(points: ScalingPoints, replicates: int, rng: np.random.Generator,
                    fitted: np.ndarray) -> np.ndarray:
    """(B, k) resampled point means: each point's replicates drawn from the pooled replicate
    residuals, plus the day-sampling error; fit residuals flipped at random (wild bootstrap)
    when neither is known."""
    draws = np.tile(points.y, (replicates, 1))
    residuals = pooled_log_residuals(points.rows)
    informative = residuals.size > 0
    for i, rows in enumerate(points.rows):
        if residuals.size:
            picks = rng.choice(residuals, size=(replicates, rows.size)).mean(axis=1)
            draws[:, i] *= np.exp(picks)
        if points.sampling_se[i] > 0:
            draws[:, i] += rng.normal(0, points.sampling_se[i], replicates)
            informative = True
    if not informative:  # wild bootstrap on log residuals of the fitted curve
        residual = np.log(points.y) - np.log(fitted)
        signs = rng.choice((-1.0, 1.0), size=(replicates, points.n_points))
        draws = fitted * np.exp(signs * residual)
    return np.maximum(draws, SIGMA_FLOOR * points.y)  # an error stays positive


def fit_power(points: ScalingPoints, *, replicates: int, level: float, seed: int) -> LawFit:
    """Pure power law with alpha's bootstrap interval."""
    require_points(points, "power")
    weights = _log_weights(points)
    params = _fit_power_many(points.x, points.y, weights)[0]
    rng = np.random.default_rng(seed)
    draws = bootstrap_draws(points, replicates, rng, _curve("power", points.x, params))
    refits = _fit_power_many(points.x, draws, weights)
    r2, aic, bic = _goodness(points, "power", params)
    return LawFit(law="power", params={"A": float(params[0]), "alpha": float(params[1])},
                  alpha=percentile_interval(params[1], refits[:, 1], level),
                  r2=r2, aic=aic, bic=bic,
                  draws=refits[np.isfinite(refits).all(axis=1)])


def fit_saturating(points: ScalingPoints, *, replicates: int, level: float, seed: int,
                   start_alpha: float) -> LawFit:
    """Saturating law E + A x^-alpha with alpha's bootstrap interval (refits that fail to
    converge are dropped and counted in ``alpha.dropped``)."""
    require_points(points, "saturating")
    start = (0.5 * float(points.y.min()), float(points.y.max()), max(start_alpha, 0.05))
    try:
        params = _fit_saturating(points.x, points.y, points.sigma, start)
    except RuntimeError as exc:
        raise ScalingFitError(f"saturating law of {points.metric} vs {points.axis} did not "
                              f"converge: {exc}") from exc
    rng = np.random.default_rng(seed)
    draws = bootstrap_draws(points, replicates, rng, _curve("saturating", points.x, params))
    refits = np.full((replicates, 3), np.nan)
    for b in range(replicates):
        try:
            refits[b] = _fit_saturating(points.x, draws[b], points.sigma, tuple(params))
        except RuntimeError:
            continue  # counted as dropped
    r2, aic, bic = _goodness(points, "saturating", params)
    return LawFit(law="saturating",
                  params={"E": float(params[0]), "A": float(params[1]), "alpha": float(params[2])},
                  alpha=percentile_interval(params[2], refits[:, 2], level),
                  r2=r2, aic=aic, bic=bic,
                  draws=refits[np.isfinite(refits).all(axis=1)])


def outcome_of(alpha: Interval) -> Outcome:
    """scaling: interval above 0; inverse: below 0; flat: it spans 0."""
    if alpha.low > 0:
        return "scaling"
    if alpha.high < 0:
        return "inverse"
    return "flat"


@dataclass(frozen=True)
class ScalingResult:
    """Both laws of one metric along one axis, which one the data prefers, and the label."""

    points: ScalingPoints
    power: LawFit
    saturating: LawFit | None
    saturating_note: str  # why the saturating law is missing ("" when fitted)
    outcome: Outcome

    def preferred(self, criterion: Literal["aic", "bic"]) -> str:
        """``power``, ``saturating`` or ``neither`` (difference below 2, or one law only)."""
        if self.saturating is None:
            return "power"
        gap = getattr(self.power, criterion) - getattr(self.saturating, criterion)
        if abs(gap) < IC_TIE:
            return "neither"
        return "saturating" if gap > 0 else "power"


def fit_scaling(points: ScalingPoints, *, replicates: int, level: float, seed: int
                ) -> ScalingResult:
    """Fit both laws; the saturating one may be missing with its reason (too few points or
    no convergence), the pure law must fit (``ScalingFitError`` otherwise)."""
    power = fit_power(points, replicates=replicates, level=level, seed=seed)
    saturating, note = None, ""
    try:
        saturating = fit_saturating(points, replicates=replicates, level=level, seed=seed,
                                    start_alpha=power.params["alpha"])
    except ScalingFitError as exc:
        note = str(exc)
    return ScalingResult(points=points, power=power, saturating=saturating,
                         saturating_note=note, outcome=outcome_of(power.alpha))
