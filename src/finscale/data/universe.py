"""Which series a refresh covers, and the manifest names they are stored under.

Every ticker and series id is checked against ``SYMBOL_PATTERN`` here, before anything is
fetched, stored or logged: a name that fails is refused as a whole request, so it never
becomes a file path, a FRED query, a manifest row or a refresh-log entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from finscale.data.config import DataConfig, check_symbol, check_symbols
from finscale.data.sources import serves_macro, serves_market
from finscale.data.sources.base import PermanentSourceError

MARKET_PREFIX = "raw/market/"
FRED_PREFIX = "raw/fred/"


def market_artifact_name(ticker: str) -> str:
    return f"{MARKET_PREFIX}{ticker}"


def fred_artifact_name(series_id: str) -> str:
    return f"{FRED_PREFIX}{series_id}"


def is_raw_artifact_name(name: str) -> bool:
    """True for ``raw/market/<ticker>`` or ``raw/fred/<series>`` with a valid symbol."""
    for prefix in (MARKET_PREFIX, FRED_PREFIX):
        if name.startswith(prefix):
            try:
                check_symbol(name.removeprefix(prefix))
            except ValueError:
                return False
            return True
    return False


def _chosen(
    configured: Sequence[str], given: Sequence[str] | None, served: bool, what: str,
    config: DataConfig,
) -> tuple[str, ...]:
    if served:
        return check_symbols(configured if given is None else given)
    if given:
        raise PermanentSourceError(
            f"source {config.source!r} serves no {what} (asked for {list(given)}); use "
            f"source 'online' (Yahoo bars + FRED series) or 'csv' (the mirror)"
        )
    return ()


def resolve_universe(
    config: DataConfig, tickers: Sequence[str] | None, fred_series: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The tickers and FRED series to refresh from ``config.source``.

    The given ones, else the config's; a half the source does not serve (FRED series for
    ``yahoo``, tickers for ``fred``) is empty, and asking for it explicitly is an error.
    An invalid name raises InvalidSymbolError before anything is fetched.
    """
    return (
        _chosen(config.tickers, tickers, serves_market(config.source), "market tickers",
                config),
        _chosen(config.fred_series, fred_series, serves_macro(config.source), "FRED series",
                config),
    )
