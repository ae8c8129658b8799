"""A real HTTP server on 127.0.0.1 that plays FRED's ``/series/observations`` endpoint.

It serves ``<fred_dir>/<SERIES>.csv`` (``date,<SERIES>``) as FRED's XML, the format fredapi
asks for by default, honouring ``observation_start`` / ``observation_end``. Unknown series and a
wrong ``api_key`` get FRED's ``400 Bad Request`` XML error.

Faults are queued per request with ``fail_next(kind, times)``: ``"500"`` (HTML 500 page),
``"hang"`` (no answer until ``hang_s`` passes or ``close()``), ``"malformed"`` (200 with a body
that is not XML). Every request's path is recorded (the api_key is kept, so tests can check
what reached the server, never what reached a log).

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

FaultKind = Literal["500", "hang", "malformed"]
OBSERVATIONS_PATH = "/fred/series/observations"
REALTIME = "2026-01-01"


def observations_xml(series: pd.Series) -> bytes:
    """FRED's XML reply for ``series`` (index: dates; NaN written as FRED's ".")."""
    rows = "".join(
        f"<observation realtime_start={quoteattr(REALTIME)} realtime_end={quoteattr(REALTIME)} "
        f"date={quoteattr(ts.strftime('%Y-%m-%d'))} "
        f"value={quoteattr('.' if pd.isna(v) else repr(float(v)))}/>"
        for ts, v in series.items()
    )
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        f'<observations realtime_start="{REALTIME}" realtime_end="{REALTIME}" '
        f'count="{len(series)}" offset="0" limit="100000">{rows}</observations>'
    ).encode()


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
        frame = pd.read_csv(csv, index_col="date", parse_dates=["date"])
        series = frame[series_id]
        if "observation_start" in query:
            series = series[series.index >= pd.Timestamp(query["observation_start"])]
        if "observation_end" in query:
            series = series[series.index <= pd.Timestamp(query["observation_end"])]
        return 200, "text/xml; charset=UTF-8", observations_xml(series)

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
