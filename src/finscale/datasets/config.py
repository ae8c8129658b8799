"""Settings of dataset assembly: target, horizon, thresholds, context and splits."""

from __future__ import annotations

from datetime import date
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


class WalkForwardConfig(FrozenModel):
    """Expanding-window folds: fold k trains up to a cut, validates on the next val_days."""

    folds: int = Field(3, ge=1)
    val_days: int = Field(365, ge=30, description="calendar days of each fold's validation range")


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
