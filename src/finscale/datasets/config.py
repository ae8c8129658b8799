"""Settings of dataset assembly: target, horizon, thresholds, context and splits."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import Field, model_validator

from finscale.config.base import FrozenModel


class DateRange(FrozenModel):
    """An inclusive date range."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


# Default fold validation length: each sample needs context (80) + horizon (<=5) trading days
# inside its range, so a validation range of d calendar days yields about d*252/365 - 85
# samples. On SPY 365 days gave 167-172 (below min_samples 200); 480 gives 245-253 for
# every daily horizon and fold, and 3 folds of 480 days (1440) end before the default test
# range (2015-01-01..2018-12-31, the default val range, holds 1461 days).
DEFAULT_FOLD_VAL_DAYS = 480


class WalkForwardConfig(FrozenModel):
    """Expanding-window folds: fold k trains up to a cut, validates on the next val_days.

    ``fold`` selects one fold for ``dataset build`` / training; None keeps the fixed ranges
    (``dataset describe`` then reports every fold).
    """

    folds: int = Field(3, ge=1)
    val_days: int = Field(
        DEFAULT_FOLD_VAL_DAYS, ge=30, description="calendar days of each fold's validation range"
    )
    fold: int | None = Field(
        None, ge=0, description="build and train on this fold's ranges (0-based); None: the "
        "fixed train/val/test ranges"
    )

    @model_validator(mode="after")
    def _fold_in_range(self) -> WalkForwardConfig:
        if self.fold is not None and self.fold >= self.folds:
            raise ValueError(f"fold {self.fold} is out of range: walk_forward has {self.folds} "
                             f"folds (0..{self.folds - 1})")
        return self

    def train_end(self, base_train_end: date, fold: int) -> date:
        """Fold ``fold``'s train range ends ``fold * val_days`` after the configured one."""
        return base_train_end + fold * timedelta(days=self.val_days)

    def val_range(self, base_train_end: date, fold: int) -> DateRange:
        """The ``val_days`` calendar days right after fold ``fold``'s train end."""
        train_end = self.train_end(base_train_end, fold)
        return DateRange(start=train_end + timedelta(days=1),
                         end=train_end + timedelta(days=self.val_days))


DEFAULT_MACRO_SERIES = ("DGS10", "DGS2", "T10Y2Y", "FEDFUNDS", "UNRATE", "CPIAUCSL", "BAMLH0A0HYM2")


class SplitsConfig(FrozenModel):
    """Chronological train / validation / test ranges; a sample's whole span must fit one."""

    train: DateRange = DateRange(start=date(1993, 1, 1), end=date(2014, 12, 31))
    val: DateRange = DateRange(start=date(2015, 1, 1), end=date(2018, 12, 31))
    test: DateRange = DateRange(start=date(2019, 1, 1), end=date(2024, 12, 31))
    min_samples: int = Field(200, ge=1, description="a split smaller than this refuses to build")
    walk_forward: WalkForwardConfig | None = Field(
        None, description="optional expanding-window folds after the train range"
    )

    @model_validator(mode="after")
    def _folds_before_test(self) -> SplitsConfig:
        wf = self.walk_forward
        if wf is not None:
            last = wf.val_range(self.train.end, wf.folds - 1)
            if last.end >= self.test.start:
                raise ValueError(
                    f"walk_forward: fold {wf.folds - 1} validation {last.start}..{last.end} "
                    f"reaches the test range starting {self.test.start}; use fewer folds or "
                    "a shorter val_days"
                )
        return self

    @property
    def fold(self) -> int | None:
        """The selected walk-forward fold, or None for the fixed ranges."""
        return None if self.walk_forward is None else self.walk_forward.fold


class DatasetConfig(FrozenModel):
    """One dataset: a target ticker, its feature tier and the labelled tasks."""

    ticker: str = "SPY"
    tier: str = "a20"
    timescale: Literal["daily", "weekly"] = "daily"
    horizon: int = Field(1, ge=1)
    thresholds: tuple[float, ...] = (0.005, 0.01, 0.02, 0.03)
    context: int = Field(80, ge=2)
    include_vix: bool = True
    include_macro: bool = True
    cross_assets: tuple[str, ...] = ()
    clip: float = Field(5.0, gt=0, description="robust z-scores are clipped to +-clip")
    macro_series: tuple[str, ...] = Field(
        DEFAULT_MACRO_SERIES, description="FRED series used as macro inputs (a late-starting "
        "series drops every row before it is known)"
    )
    pooled_tickers: tuple[str, ...] = Field(
        (), description="non-empty: stack these tickers with a ticker id (data-scaling phase)"
    )
    report_horizons: tuple[int, ...] = Field(
        (1, 2, 3, 5), description="daily horizons `dataset describe` reports (plus weekly)"
    )
    splits: SplitsConfig = SplitsConfig()
