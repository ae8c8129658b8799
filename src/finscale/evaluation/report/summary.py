"""Plain-language sentences of what a panel's data supports, with the fitted numbers."""

from __future__ import annotations

from finscale.evaluation.bootstrap import Interval
from finscale.evaluation.report.analysis import BestComparison, MetricFit, Panel
from finscale.evaluation.scaling import ALPHA_BOUND

PREFIXES = ((1e9, "B"), (1e6, "M"), (1e3, "k"))
OUTCOME_WORDS = {
    "scaling": "it falls with size (scaling)",
    "flat": "no trend with size is supported (flat)",
    "inverse": "it rises with size (inverse scaling)",
}


def human(n: float) -> str:
    """10000 -> 10k, 1250000 -> 1.25M."""
    for size, suffix in PREFIXES:
        if n >= size:
            return f"{n / size:.3g}{suffix}"
    return f"{n:.3g}"


def ci(interval: Interval, digits: int = 3) -> str:
    """``95% CI 0.010 to 0.090``."""
    return (f"{interval.level:.0%} CI {interval.low:.{digits}f} to "
            f"{interval.high:.{digits}f}")


def fit_sentence(panel: Panel, fit: MetricFit) -> str:
    """The exponent with its interval and label, or why there is none."""
    where = f"On {panel.title}"
    if fit.result is None:
        return f"{where}, {fit.metric.label} was not fitted: {fit.refusal}."
    result = fit.result
    alpha = result.power.alpha
    span = f"{human(float(fit.x.min()))}-{human(float(fit.x.max()))} parameters"
    text = (f"{where}, {fit.metric.label} scales as N^{-alpha.estimate:+.3f} "
            f"(alpha {alpha.estimate:.3f}, {ci(alpha)}) "
            f"across {span} (R^2 {result.power.r2:.2f}): {OUTCOME_WORDS[result.outcome]}.")
    if result.saturating is not None:
        sat = result.saturating
        bound = (" (the interval reaches the fit's bound: with a floor alpha is not "
                 "identified)" if max(abs(sat.alpha.low), abs(sat.alpha.high)) >= ALPHA_BOUND
                 else "")
        text += (f" With a floor, E + A N^-alpha gives E {sat.params['E']:.3f}, alpha "
                 f"{sat.params['alpha']:.3f} ({ci(sat.alpha)}){bound}; AIC prefers "
                 f"{result.preferred('aic')}, BIC {result.preferred('bic')}.")
    else:
        text += f" The saturating law was not fitted: {result.saturating_note}."
    return text


def comparison_sentence(comparison: BestComparison | None) -> str:
    """Best model vs best baseline by test AUC, with the difference's interval."""
    if comparison is None:
        return "No model and baseline pair with test AUC to compare."
    c = comparison
    head = (f"The best model (budget {c.model}, test AUC {c.model_auc.estimate:.3f}) against "
            f"the best baseline ({c.baseline}, {c.baseline_auc.estimate:.3f}), both chosen "
            f"on {c.chosen_on}")
    if c.difference is None:
        return (f"{head}: AUC difference {c.model_auc.estimate - c.baseline_auc.estimate:.3f}"
                ", no interval (one replicate each and no bootstrap error).")
    d = c.difference
    if d.low > 0:
        verdict = "the model beats the baseline"
    elif d.high < 0:
        verdict = "the model does not beat the baseline; the baseline is better"
    else:
        verdict = "the data do not separate them"
    return (f"{head}: AUC difference {d.estimate:.3f} ({ci(d)}, unpaired, so wider than a "
            f"paired comparison): {verdict}.")


def excluded_sentence(excluded: dict[str, int]) -> str:
    if not excluded:
        return "No rows were excluded from the fits."
    parts = ", ".join(f"{count} {reason}" for reason, count in sorted(excluded.items()))
    return f"Excluded from the fits and counted: {parts} (rows = run x task)."


def headline(panels: list[Panel]) -> str:
    """The report's first sentence: the first panel's primary fit and comparison."""
    for panel in panels:
        for fit in panel.fits:
            if fit.result is not None:
                return f"{fit_sentence(panel, fit)} {comparison_sentence(panel.comparison)}"
    return "No panel had enough budgets for a scaling fit."
