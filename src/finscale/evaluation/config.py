"""Settings of evaluation: bootstrap, thresholds, calibration bins, baselines and fits.

One frozen model so every number the evaluation uses is named, validated and documented;
defaults are the study's choices (each with its reason beside it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from finscale.config.base import FrozenModel


class BootstrapConfig(FrozenModel):
    """Block bootstrap over days (samples overlap in time)."""

    replicates: int = Field(1000, ge=50, description="bootstrap resamples per interval")
    level: float = Field(0.95, gt=0.5, lt=1, description="two-sided confidence level")
    block_margin_days: int = Field(
        40, ge=0, description="rows added to the horizon for the block length: a label "
        "window shares H-1 rows with its neighbours (that much is certain dependence), and "
        "volatility, which these labels mostly measure, clusters for weeks beyond that. On "
        "SPY 2019-24 (H1, 1%) the VIX score's AUC had bootstrap SE 0.0157 with blocks of 1, "
        "0.0162 with 40 and 0.0184 with 60: 40 rows keeps ~30 blocks in a 6-year test split"
    )
    seed: int = 0


class ScoreColumn(FrozenModel):
    """A one-number baseline score and the dataset columns that carry it, first match wins."""

    name: str
    columns: tuple[str, ...] = Field(min_length=1)
    description: str


DEFAULT_SCORES = (
    ScoreColumn(name="vix_level", columns=("vix_close", "xvix_level"),
                description="VIX close (vix tier; xvix_level in tiers a50+)"),
    ScoreColumn(name="atr_close", columns=("atr_14_frac", "atr_7_frac", "atr_5_frac"),
                description="ATR as a fraction of the close (a20: ATR 14)"),
    ScoreColumn(name="realised_vol_20", columns=("cc_vol_20",),
                description="20-day close-to-close volatility (tiers a50+)"),
    ScoreColumn(name="day_range", columns=("candle_range_1",),
                description="the day's high-low range over the close (tiers a50+)"),
    ScoreColumn(name="abs_return", columns=("ret_1",),
                description="|one-day log return| (tiers a50+; taken as absolute value)"),
)
# scores whose sign carries no information: the baseline uses the absolute value
ABSOLUTE_SCORES = ("abs_return",)


class BaselinesConfig(FrozenModel):
    """Which baselines run and how they are (minimally) fitted."""

    scores: tuple[ScoreColumn, ...] = DEFAULT_SCORES
    lags: tuple[int, ...] = Field(
        (1, 2, 5), description="rows before the window's last row added to the logistic "
        "regression's inputs (a few lags, still inside the model's context)"
    )
    logistic_c: tuple[float, ...] = Field(
        (0.01, 0.1, 1.0), description="inverse L2 strengths tried; the best on validation wins"
    )
    hgb_learning_rate: tuple[float, ...] = (0.03, 0.1)
    hgb_max_leaf_nodes: tuple[int, ...] = (7, 31)
    hgb_max_iter: int = Field(200, ge=10)
    hgb_min_samples_leaf: int = Field(40, ge=1)
    threads: int = Field(
        1, ge=1, description="OpenMP/BLAS threads of the fits: a few thousand rows gain "
        "nothing from more, and on a busy machine two threads took 30 s where one took 0.8 s"
    )
    seed: int = 0


class EvaluationConfig(FrozenModel):
    """Everything the evaluation package reads."""

    bootstrap: BootstrapConfig = BootstrapConfig()
    baselines: BaselinesConfig = BaselinesConfig()
    threshold_rule: Literal["f1"] = Field(
        "f1", description="how the decision threshold is chosen on validation"
    )
    reliability_bins: int = Field(10, ge=2)
    reliability_strategy: Literal["quantile", "uniform"] = Field(
        "quantile", description="quantile bins: predictions sit near the base rate, so "
        "uniform bins leave most of them in one or two bins"
    )
    fit_replicates: int = Field(400, ge=50, description="bootstrap refits of a scaling law")
