"""Settings of the data service: universe, sources, retries and validation rules.

Also the one pattern a ticker or FRED series id must match (``SYMBOL_PATTERN``). A symbol
becomes a file name in the csv mirror, a part of a manifest name and a FRED query
parameter, so it is checked at every boundary (config, CLI, flow parameters, library)
before it is used: ``../../x`` or ``DGS10&api_key=x`` never reach a path or a URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema

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

# Upper-case letters and digits, runs joined by single ".", "-" or "_" (SPY, BRK-B, BF.B,
# DGS10, T10Y2Y). No "/", no "..", no "^" (the Yahoo source maps VIX to ^VIX itself), no
# query characters: a valid symbol is always a plain file stem and a plain URL value.
SYMBOL_PATTERN = r"^[A-Z0-9]+(?:[.\-_][A-Z0-9]+)*$"
SYMBOL_MAX_CHARS = 32
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
DEFAULT_MIRROR_MAX_FILE_MB = 64.0


class InvalidSymbolError(ValueError):
    """A ticker or series id that does not match ``SYMBOL_PATTERN``."""


def check_symbol(value: str) -> str:
    """``value`` if it is a valid ticker or series id; else InvalidSymbolError naming it."""
    if len(value) > SYMBOL_MAX_CHARS or _SYMBOL_RE.fullmatch(value) is None:
        raise InvalidSymbolError(
            f"{value!r} is not a valid ticker or series id: use 1-{SYMBOL_MAX_CHARS} upper-case "
            f"letters and digits, optionally joined by single '.', '-' or '_' (e.g. SPY, BRK-B, "
            f"DGS10)"
        )
    return value


def check_symbols(values: Iterable[str]) -> tuple[str, ...]:
    """Every symbol checked (the first invalid one raises)."""
    return tuple(check_symbol(v) for v in values)


# A ticker or series id as a pydantic field type: the config and the flow parameters use it,
# and its JSON schema carries the pattern, so the Prefect UI form refuses a bad one too.
Symbol = Annotated[
    str,
    AfterValidator(check_symbol),
    WithJsonSchema({"type": "string", "pattern": SYMBOL_PATTERN, "maxLength": SYMBOL_MAX_CHARS}),
]


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

    tickers: tuple[Symbol, ...] = DEFAULT_TICKERS
    fred_series: tuple[Symbol, ...] = DEFAULT_FRED_SERIES
    source: SourceName = "csv"
    mirror: Path | None = Field(None, description="csv mirror dir; FINSCALE_DATA_MIRROR if unset")
    mirror_max_file_mb: float = Field(
        DEFAULT_MIRROR_MAX_FILE_MB, gt=0,
        description="a mirror file larger than this is refused before it is parsed",
    )
    start: date = date(1990, 1, 1)
    overlap_days: int = Field(10, ge=1, description="re-fetched rows checked for restatements")
    timeout_s: float = Field(30.0, gt=0)
    fred_api_root: str = "https://api.stlouisfed.org/fred"
    retry: RetryConfig = RetryConfig()
    validation: ValidationConfig = ValidationConfig()
