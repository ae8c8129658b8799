"""A requests transport adapter that plays Yahoo Finance from Yahoo-classic CSV files.

Mount it on a ``requests.Session`` and hand that session to yfinance (its ``session=`` seam):
yfinance's own cookie/crumb dance and chart-JSON parsing then run offline. It answers

- ``https://fc.yahoo.com`` (cookie) with 200, and ``/v1/test/getcrumb`` with a crumb;
- ``/v8/finance/chart/<symbol>`` with chart JSON built from ``<market_dir>/<TICKER>.csv``
  (``^VIX`` -> ``VIX.csv``) for ``period1``/``period2`` or ``range``; an unknown symbol gets
  Yahoo's 404 ``Not Found`` chart error;
- anything else (consent pages, quoteSummary) with 404.

Fault modes: ``down`` raises ConnectionError on every request, ``dns`` raises a
name-resolution ConnectionError, ``hang`` blocks each request until ``hang_s`` passes or
``release()`` is called (tests call it in teardown so no worker thread outlives them).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

YahooMode = Literal["ok", "down", "dns", "hang"]
EXCHANGE_TZ = "America/New_York"
SESSION_OPEN = pd.Timedelta(hours=9, minutes=30)
CHART_PREFIX = "/v8/finance/chart/"
CRUMB = "fake-crumb"
INDEX_PREFIX = "^"


def csv_name_for(symbol: str) -> str:
    """The mirror file name of a Yahoo symbol (``^VIX`` -> ``VIX``)."""
    return symbol.removeprefix(INDEX_PREFIX)


def load_market_csv(market_dir: Path, symbol: str) -> pd.DataFrame | None:
    """The CSV for ``symbol`` as a frame indexed by Date, or None if there is no file."""
    path = market_dir / f"{csv_name_for(symbol)}.csv"
    if not path.is_file():
        return None
    return pd.read_csv(path, index_col="Date", parse_dates=["Date"])


def session_timestamps(dates: pd.DatetimeIndex) -> list[int]:
    """Epoch seconds of each session's 09:30 New York open, as Yahoo stamps daily bars."""
    local = (dates + SESSION_OPEN).tz_localize(EXCHANGE_TZ)
    return [int(ts.timestamp()) for ts in local]


def chart_json(symbol: str, bars: pd.DataFrame) -> dict[str, Any]:
    """Yahoo's ``/v8/finance/chart`` reply for daily ``bars`` (Yahoo-classic columns)."""
    def column(name: str) -> list[float | None]:
        return [None if pd.isna(v) else float(v) for v in bars[name]]

    meta = {
        "currency": "USD",
        "symbol": symbol,
        "exchangeName": "NYQ",
        "instrumentType": "INDEX" if symbol.startswith(INDEX_PREFIX) else "ETF",
        "gmtoffset": -18000,
        "timezone": "EST",
        "exchangeTimezoneName": EXCHANGE_TZ,
        "dataGranularity": "1d",
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    return {"chart": {"result": [{
        "meta": meta,
        "timestamp": session_timestamps(pd.DatetimeIndex(bars.index)),
        "indicators": {
            "quote": [{
                "open": column("Open"), "high": column("High"), "low": column("Low"),
                "close": column("Close"),
                "volume": [None if pd.isna(v) else int(v) for v in bars["Volume"]],
            }],
            "adjclose": [{"adjclose": column("Adj Close")}],
        },
    }], "error": None}}


NOT_FOUND_CHART = {"chart": {"result": None, "error": {
    "code": "Not Found", "description": "No data found, symbol may be delisted"}}}


@dataclass
class FakeYahooAdapter(BaseAdapter):
    """Answers yfinance's requests from CSV files; records every URL it was asked for."""

    market_dir: Path
    mode: YahooMode = "ok"
    hang_s: float = 30.0
    requests_seen: list[str] = field(default_factory=list)
    _released: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__()

    def release(self) -> None:
        """Unblock every hung request now."""
        self._released.set()

    def chart_requests(self) -> list[str]:
        return [u for u in self.requests_seen if CHART_PREFIX in u]

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        self.requests_seen.append(url)
        if self.mode == "down":
            raise requests.exceptions.ConnectionError(f"fake network down: {url}")
        if self.mode == "dns":
            host = urlsplit(url).hostname
            raise requests.exceptions.ConnectionError(
                f"Failed to resolve '{host}' ([Errno -3] Temporary failure in name resolution)"
            )
        if self.mode == "hang":
            self._released.wait(self.hang_s)
        parts = urlsplit(url)
        if parts.hostname == "fc.yahoo.com":
            return self._reply(request, 200, b"", "text/html")
        if parts.path.endswith("/v1/test/getcrumb"):
            return self._reply(request, 200, CRUMB.encode(), "text/plain")
        if parts.path.startswith(CHART_PREFIX):
            symbol = requests.utils.unquote(parts.path[len(CHART_PREFIX):])
            return self._chart(request, symbol, parse_qs(parts.query))
        return self._reply(request, 404, b"<html>not found</html>", "text/html")

    def _chart(
        self, request: requests.PreparedRequest, symbol: str, query: dict[str, list[str]]
    ) -> requests.Response:
        bars = load_market_csv(self.market_dir, symbol)
        if bars is None:
            return self._json(request, 404, NOT_FOUND_CHART)
        if "period1" in query and "period2" in query:
            stamps = pd.Series(session_timestamps(pd.DatetimeIndex(bars.index)), index=bars.index)
            lo, hi = int(query["period1"][0]), int(query["period2"][0])
            bars = bars.loc[((stamps >= lo) & (stamps < hi)).to_numpy()]
        else:
            bars = bars.tail(1)  # range=1d: yfinance only wants the metadata (timezone)
        return self._json(request, 200, chart_json(symbol, bars))

    def _json(
        self, request: requests.PreparedRequest, status: int, body: dict[str, Any]
    ) -> requests.Response:
        return self._reply(request, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _reply(
        request: requests.PreparedRequest, status: int, body: bytes, content_type: str
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response._content = body
        response.headers = CaseInsensitiveDict({"Content-Type": content_type})
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        response.reason = "OK" if status < 400 else "Not Found"
        return response

    def close(self) -> None:
        self.release()


def fake_yahoo_session(adapter: FakeYahooAdapter) -> requests.Session:
    """A requests Session whose http(s) traffic all goes to ``adapter``."""
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
