"""Settings of the data service: universe, sources, retries and validation rules."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field

from finscale.config.base import FrozenModel

MIRROR_ENV = "FINSCALE_DATA_MIRROR"
# csv: bars and series from the mirror folder; yahoo: bars only (Yahoo); fred: series only
# (FRED); online: bars from Yahoo and series from FRED (the nightly deployment's default).
SourceName = Literal["csv", "yahoo", "fred", "online"]

DEFAULT_TICKERS = ("SPY", "DIA", "QQQ", "VIX")
DEFAULT_FRED_SERIES = (
    "DGS10", "DGS2", "T10Y2Y", "VIXCLS", "FEDFUNDS", "UNRATE", "CPIAUCSL",
    "BAMLH0A0HYM2", "DTWEXBGS",
)


class RetryConfig(FrozenModel):
    """Exponential back-off with jitter for transient faults."""

    attempts: int = Field(4, ge=1, le=20)
    base_delay_s: float = Field(1.0, gt=0)
    max_delay_s: float = Field(30.0, gt=0)
    jitter: float = Field(0.5, ge=0, le=1, description="fraction of each delay drawn at random")


class ValidationConfig(FrozenModel):
    """Rules a fetched market frame must pass before it replaces the stored one."""

    calendar: str = "XNYS"
    max_missing_sessions: int = Field(0, ge=0)
    nan_policy: Literal["reject", "drop_rows"] = "reject"


class DataConfig(FrozenModel):
    """What to fetch, from where, and how carefully."""

    tickers: tuple[str, ...] = DEFAULT_TICKERS
    fred_series: tuple[str, ...] = DEFAULT_FRED_SERIES
    source: SourceName = "csv"
    mirror: Path | None = Field(None, description="csv mirror dir; FINSCALE_DATA_MIRROR if unset")
    start: date = date(1990, 1, 1)
    overlap_days: int = Field(10, ge=1, description="re-fetched rows checked for restatements")
    timeout_s: float = Field(30.0, gt=0)
    fred_api_root: str = "https://api.stlouisfed.org/fred"
    retry: RetryConfig = RetryConfig()
    validation: ValidationConfig = ValidationConfig()
