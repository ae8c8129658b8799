"""Data sources behind one interface, and the factories that pick one from the config.

``config.source`` names where data comes from:

===========  ====================  ====================
source       market bars           macro series
===========  ====================  ====================
``csv``      CsvMirrorSource       CsvMirrorSource
``yahoo``    YahooSource           (not served)
``fred``     (not served)          FredSource
``online``   YahooSource           FredSource
===========  ====================  ====================

A source that does not serve one half of the universe gives None for it: a refresh with
``yahoo`` refreshes tickers only, one with ``fred`` FRED series only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finscale.data.config import MIRROR_ENV, DataConfig, SourceName
from finscale.data.sources.base import (
    MACRO_INDEX,
    MARKET_COLUMNS,
    MARKET_INDEX,
    MacroSource,
    MarketSource,
    PermanentSourceError,
    SourceError,
    SourceUnreachableError,
    TransientSourceError,
)
from finscale.data.sources.csv_mirror import CsvMirrorSource

if TYPE_CHECKING:
    from finscale.data.sources.fred import FredSource
    from finscale.data.sources.yahoo import YahooSource

__all__ = [
    "MACRO_INDEX",
    "MARKET_COLUMNS",
    "MARKET_INDEX",
    "CsvMirrorSource",
    "MacroSource",
    "MarketSource",
    "PermanentSourceError",
    "SourceError",
    "SourceUnreachableError",
    "TransientSourceError",
    "make_macro_source",
    "make_market_source",
    "resolve_mirror",
    "serves_macro",
    "serves_market",
]


def resolve_mirror(config: DataConfig, mirror: Path | None) -> Path:
    """The csv mirror folder: the argument, else ``config.mirror``, else ``$FINSCALE_DATA_MIRROR``.

    Raises PermanentSourceError when none is set or the folder does not exist.
    """
    chosen = mirror or config.mirror or (Path(os.environ[MIRROR_ENV]) if os.environ.get(
        MIRROR_ENV) else None)
    if chosen is None:
        raise PermanentSourceError(
            f"csv source: no mirror folder given; pass --mirror DIR, set data.mirror or "
            f"${MIRROR_ENV}"
        )
    chosen = Path(chosen).expanduser()
    if not chosen.is_dir():
        raise PermanentSourceError(f"csv source: mirror folder {chosen} does not exist")
    return chosen


def _csv(config: DataConfig, mirror: Path | None, **_: Any) -> CsvMirrorSource:
    return CsvMirrorSource(resolve_mirror(config, mirror), config.mirror_max_file_mb)


# The online sources are imported when chosen: they import retry (which imports this package)
# and their vendor libraries, neither of which a csv run needs.
def _yahoo(config: DataConfig, mirror: Path | None, **kwargs: Any) -> YahooSource:
    from finscale.data.sources.yahoo import YahooSource

    return YahooSource(timeout_s=config.timeout_s, **kwargs)


def _fred(config: DataConfig, mirror: Path | None, **kwargs: Any) -> FredSource:
    from finscale.data.sources.fred import FredSource

    return FredSource(api_root=config.fred_api_root, timeout_s=config.timeout_s)


MARKET_SOURCE_FACTORIES: dict[SourceName, Callable[..., MarketSource]] = {
    "csv": _csv,
    "yahoo": _yahoo,
    "online": _yahoo,
}
MACRO_SOURCE_FACTORIES: dict[SourceName, Callable[..., MacroSource]] = {
    "csv": _csv,
    "fred": _fred,
    "online": _fred,
}


def serves_market(source: SourceName) -> bool:
    """Whether ``source`` provides market bars (tickers)."""
    return source in MARKET_SOURCE_FACTORIES


def serves_macro(source: SourceName) -> bool:
    """Whether ``source`` provides macro (FRED) series."""
    return source in MACRO_SOURCE_FACTORIES


def make_market_source(
    config: DataConfig,
    mirror: Path | None = None,
    *,
    cache_dir: Path | None = None,
    session: object | None = None,
) -> MarketSource | None:
    """The market-bar source ``config.source`` selects, None if it serves no bars.

    ``cache_dir`` is where yfinance keeps its timezone/cookie cache (a temp folder if None; pass
    ``workspace.cache_dir``); ``session`` is a requests/curl_cffi session for yfinance (tests).
    """
    factory = MARKET_SOURCE_FACTORIES.get(config.source)
    return None if factory is None else factory(
        config, mirror, cache_dir=cache_dir, session=session
    )


def make_macro_source(config: DataConfig, mirror: Path | None = None) -> MacroSource | None:
    """The macro-series source ``config.source`` selects, None if it serves no series."""
    factory = MACRO_SOURCE_FACTORIES.get(config.source)
    return None if factory is None else factory(config, mirror)
