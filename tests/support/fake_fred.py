"""A real HTTP server on 127.0.0.1 that plays FRED's ``/series/observations`` endpoint.

It serves ``<fred_dir>/<SERIES>.csv`` as FRED's XML, the format fredapi asks for by default,
honouring ``observation_start`` / ``observation_end``. A file may hold vintages
(``date,realtime_start,<SERIES>``: one row per observation and release, the csv mirror's
vintage layout); a plain ``date,<SERIES>`` file is one vintage released on ``REALTIME``
(an observation dated later: on its own date).
Like FRED, a request with ``realtime_start`` / ``realtime_end`` (fredapi's
``get_series_all_releases``) gets every vintage in that window, each with its real-time
period; one without gets the latest value of each observation. Unknown series and a wrong
``api_key`` get FRED's ``400 Bad Request`` XML error.

Faults are queued per request with ``fail_next(kind, times)``: ``"500"`` (HTML 500 page),
``"hang"`` (no answer until ``hang_s`` passes or ``close()``), ``"malformed"`` (200 with a body
that is not XML), ``"html"`` (200 with a well-formed HTML page, as a proxy or maintenance page
sends), ``"empty"`` (200 with an empty body). Every request's path is recorded (the api_key is
kept, so tests can check what reached the server, never what reached a log).

Use as a context manager: ``with FakeFredServer(dir, api_key="k") as server: server.root_url``.
"""

from __future__ import annotations

import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import quoteattr

import pandas as pd

FaultKind = Literal["500", "hang", "malformed", "html", "empty"]
OBSERVATIONS_PATH = "/fred/series/observations"
REALTIME = "2026-01-01"
REALTIME_START = "realtime_start"
REALTIME_END = "realtime_end"
LATEST_REALTIME = "9999-12-31"
HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>FRED is down for maintenance</title></head>"
             b"<body><h1>Scheduled maintenance</h1><p>Please try again later.</p></body></html>")


def vintages(csv: Path, series_id: str) -> pd.DataFrame:
    """Every (date, realtime_start, realtime_end, value) row of a plain or vintage CSV."""
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    if REALTIME_START not in frame.columns:  # one vintage; later observations on their day
        frame[REALTIME_START] = frame["date"].where(frame["date"] > REALTIME, REALTIME)
    frame = frame.sort_values(["date", REALTIME_START], kind="stable")
    ends = pd.to_datetime(frame.groupby("date")[REALTIME_START].shift(-1)) - pd.Timedelta(days=1)
    frame[REALTIME_END] = ends.dt.strftime("%Y-%m-%d").fillna(LATEST_REALTIME)
    return frame.rename(columns={series_id: "value"})[
        ["date", REALTIME_START, REALTIME_END, "value"]]


def observations_xml(rows: pd.DataFrame, realtime: tuple[str, str]) -> bytes:
    """FRED's XML reply for ``rows`` (as from ``vintages``; "" written as FRED's ".")."""
    body = "".join(
        f"<observation realtime_start={quoteattr(start)} realtime_end={quoteattr(end)} "
        f"date={quoteattr(day)} value={quoteattr(value.strip() or '.')}/>"
        for day, start, end, value in rows.itertuples(index=False)
    )
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        f"<observations realtime_start={quoteattr(realtime[0])} "
        f"realtime_end={quoteattr(realtime[1])} "
        f'count="{len(rows)}" offset="0" limit="100000">{body}</observations>'
    ).encode()


def select(rows: pd.DataFrame, query: dict[str, str]) -> pd.DataFrame:
    """The rows FRED would answer: vintages overlapping the real-time window (without one,
    the latest of each observation), inside the observation window."""
    if REALTIME_START in query or REALTIME_END in query:
        start, end = query.get(REALTIME_START, REALTIME), query.get(REALTIME_END, REALTIME)
        rows = rows[(rows[REALTIME_START] <= end) & (rows[REALTIME_END] >= start)]
    else:
        rows = rows[rows[REALTIME_END] == LATEST_REALTIME]
    if "observation_start" in query:
        rows = rows[rows["date"] >= query["observation_start"]]
    if "observation_end" in query:
        rows = rows[rows["date"] <= query["observation_end"]]
    return rows


def error_xml(code: int, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        f"<error code={quoteattr(str(code))} message={quoteattr(message)}/>"
    ).encode()


class FakeFredServer:
    """ThreadingHTTPServer on an ephemeral 127.0.0.1 port serving FRED CSVs as FRED XML."""

    def __init__(self, fred_dir: Path, *, api_key: str, hang_s: float = 30.0) -> None:
        self.fred_dir = Path(fred_dir)
        self.api_key = api_key
        self.hang_s = hang_s
        self.paths_seen: list[str] = []
        self._faults: deque[FaultKind] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def root_url(self) -> str:
        """What ``DataConfig.fred_api_root`` should be to talk to this server."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/fred"

    def observation_requests(self) -> list[str]:
        return [p for p in self.paths_seen if p.startswith(OBSERVATIONS_PATH)]

    def fail_next(self, kind: FaultKind, times: int = 1) -> None:
        """Answer the next ``times`` requests with fault ``kind``."""
        with self._lock:
            self._faults.extend([kind] * times)

    def _next_fault(self) -> FaultKind | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def __enter__(self) -> FakeFredServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()  # wake hung handlers first so shutdown does not wait on them
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a request path, faults aside."""
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != OBSERVATIONS_PATH:
            return 404, "text/xml", error_xml(404, "Not Found")
        if query.get("api_key") != self.api_key:
            return 400, "text/xml", error_xml(
                400, "Bad Request.  The value for variable api_key is not registered."
            )
        series_id = query.get("series_id", "")
        csv = self.fred_dir / f"{series_id}.csv"
        if not series_id.isalnum() or not csv.is_file():
            return 400, "text/xml", error_xml(
                400, "Bad Request.  The series does not exist."
            )
        rows = select(vintages(csv, series_id), query)
        realtime = (query.get(REALTIME_START, REALTIME), query.get(REALTIME_END, REALTIME))
        return 200, "text/xml; charset=UTF-8", observations_xml(rows, realtime)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.paths_seen.append(self.path)
                fault = server._next_fault()
                if fault == "hang":
                    server._closing.wait(server.hang_s)
                    return
                if fault == "500":
                    self._send(500, "text/html", b"<html><body>Internal Server Error</body></html>")
                    return
                if fault == "malformed":
                    self._send(200, "text/xml", b"<observations><observation date=")
                    return
                if fault == "html":
                    self._send(200, "text/html; charset=UTF-8", HTML_PAGE)
                    return
                if fault == "empty":
                    self._send(200, "text/xml", b"")
                    return
                self._send(*server.answer(self.path))

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Silent: the request line carries the api_key."""

        return Handler
