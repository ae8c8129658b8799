"""A real HTTP server on 127.0.0.1 that plays Yahoo Finance from Yahoo-classic CSV files.

yfinance cannot be pointed at another host, so the session handed to it (its ``session=``
seam) carries ``ForwardingAdapter``, which sends every request to this server instead (the
real host becomes the first path segment) and raises the client-side faults. The session is
picklable: YahooSource runs each download in a child process. yfinance's own cookie/crumb
dance and chart-JSON parsing then run offline. The server answers

- ``https://fc.yahoo.com`` (cookie) with 200, and ``/v1/test/getcrumb`` with a crumb;
- ``/v8/finance/chart/<symbol>`` with chart JSON built from ``<market_dir>/<TICKER>.csv``
  (``^VIX`` -> ``VIX.csv``) for ``period1``/``period2`` or ``range``; an unknown symbol gets
  Yahoo's 404 ``Not Found`` chart error;
- anything else (consent pages, quoteSummary) with 404.

Server-side faults (``mode``, changeable while it runs): ``down`` drops every connection
without an answer; ``hang`` holds every request until ``hang_s`` passes or ``release()`` is
called; ``hang_symbols`` holds only the chart requests of those symbols. Client-side:
``fake_yahoo_session(server, dns_failure=True)`` raises a name-resolution ConnectionError.
Every request is recorded as the URL yfinance asked for. Use as a context manager; children
that unpickle the session need ``tests.support.IMPORT_ROOT`` on their PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

YahooMode = Literal["ok", "down", "hang"]
HANDLER_THREAD_NAME = "fake-yahoo-handler"
SERVER_THREAD_NAME = "fake-yahoo-server"
FAKE_THREAD_NAMES = (HANDLER_THREAD_NAME, SERVER_THREAD_NAME)  # tests tell them from their own
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


class _Handler(BaseHTTPRequestHandler):
    """One request: recorded, then faulted or answered by the owning FakeYahooServer."""

    server: _Server

    def do_GET(self) -> None:
        fake = self.server.fake
        host, _, rest = self.path.lstrip("/").partition("/")
        parts = urlsplit(f"https://{host}/{rest}")
        fake.record(parts.geturl())
        symbol = requests.utils.unquote(parts.path[len(CHART_PREFIX):]) \
            if parts.path.startswith(CHART_PREFIX) else None
        if fake.mode == "down":
            self.close_connection = True  # no status line: the client sees a dropped connection
            return
        if fake.mode == "hang" or (symbol is not None and symbol in fake.hang_symbols):
            fake.wait_for_release()
        # OSError: the client gave up (its process was killed), nobody to answer
        with contextlib.suppress(OSError):
            self._answer(fake, parts.hostname, parts.path, symbol, parse_qs(parts.query))

    def _answer(self, fake: FakeYahooServer, hostname: str | None, path: str,
                symbol: str | None, query: dict[str, list[str]]) -> None:
        if hostname == "fc.yahoo.com":
            self._reply(200, b"", "text/html")
        elif path.endswith("/v1/test/getcrumb"):
            self._reply(200, CRUMB.encode(), "text/plain")
        elif symbol is not None:
            status, body = fake.chart(symbol, query)
            self._reply(status, json.dumps(body).encode(), "application/json")
        else:
            self._reply(404, b"<html>not found</html>", "text/html")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeYahooServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def process_request(self, request: Any, client_address: Any) -> None:
        """As ThreadingHTTPServer, with named threads (tests tell them from the code's own)."""
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address), name=HANDLER_THREAD_NAME,
                                  daemon=True)
        thread.start()


class FakeYahooServer:
    """ThreadingHTTPServer on an ephemeral 127.0.0.1 port serving the CSVs as Yahoo's API."""

    def __init__(self, market_dir: Path, *, mode: YahooMode = "ok", hang_s: float = 30.0,
                 hang_symbols: frozenset[str] = frozenset()) -> None:
        self.market_dir = Path(market_dir)
        self.mode: YahooMode = mode
        self.hang_s = hang_s
        self.hang_symbols = hang_symbols
        self.requests_seen: list[str] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=SERVER_THREAD_NAME, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeYahooServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def record(self, url: str) -> None:
        with self._lock:
            self.requests_seen.append(url)

    def chart_requests(self) -> list[str]:
        with self._lock:
            return [u for u in self.requests_seen if CHART_PREFIX in u]

    def release(self) -> None:
        """Unblock every hung request now (and every later one)."""
        self._released.set()

    def wait_for_release(self) -> None:
        self._released.wait(self.hang_s)

    def chart(self, symbol: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """Status and chart JSON for ``symbol`` over the asked range."""
        bars = load_market_csv(self.market_dir, symbol)
        if bars is None:
            return 404, NOT_FOUND_CHART
        if "period1" in query and "period2" in query:
            stamps = pd.Series(session_timestamps(pd.DatetimeIndex(bars.index)), index=bars.index)
            lo, hi = int(query["period1"][0]), int(query["period2"][0])
            bars = bars.loc[((stamps >= lo) & (stamps < hi)).to_numpy()]
        else:
            bars = bars.tail(1)  # range=1d: yfinance only wants the metadata (timezone)
        return 200, chart_json(symbol, bars)


class ForwardingAdapter(HTTPAdapter):
    """Sends each request to the fake server, the real host as the first path segment."""

    # what pickling keeps (HTTPAdapter.__getstate__)
    __attrs__: ClassVar[list[str]] = [*HTTPAdapter.__attrs__, "server_url", "dns_failure"]

    def __init__(self, server_url: str = "", dns_failure: bool = False) -> None:
        self.server_url = server_url
        self.dns_failure = dns_failure
        super().__init__()

    def send(self, request: requests.PreparedRequest, *args: Any,
             **kwargs: Any) -> requests.Response:
        original = request.url or ""
        parts = urlsplit(original)
        if self.dns_failure:
            raise requests.exceptions.ConnectionError(
                f"Failed to resolve '{parts.hostname}' ([Errno -3] Temporary failure in name "
                f"resolution)"
            )
        query = f"?{parts.query}" if parts.query else ""
        request.url = f"{self.server_url}/{parts.hostname}{parts.path}{query}"
        response = super().send(request, *args, **kwargs)
        response.url = original  # yfinance looks at the reply's URL (consent redirects)
        return response


def fake_yahoo_session(server: FakeYahooServer, *, dns_failure: bool = False) -> requests.Session:
    """A picklable requests Session whose http(s) traffic all goes to ``server``."""
    session = requests.Session()
    adapter = ForwardingAdapter(server.url, dns_failure=dns_failure)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
