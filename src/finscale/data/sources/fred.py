"""The ``fred`` source: FRED observations through fredapi, as first published.

Each observation is stored with its first-release value and the day it was published
(``realtime_start``), from fredapi's ``get_series_all_releases`` (one request over every
real-time period, 1776-07-04 to 9999-12-31). Monthly values thus enter features on their
real release day, also when a release was late (Sept 2013 CPI: 30 Oct, not mid-October),
and never as today's revision. FRED answers at most ``FRED_MAX_ROWS`` rows per request and
fredapi does not page, so a reply that long is refused as possibly cut.

fredapi quirks handled here (STACK-NOTES): it has no timeout (every call is bounded from
outside), it turns HTTP errors into ``ValueError``/``ParseError`` with the ``HTTPError`` only as
the exception context (that is where the status code is read), and DNS failures surface as
``URLError``. The API key comes only from ``$FRED_API_KEY`` and is scrubbed from every message.
"""

from __future__ import annotations

import http.client
import os
import socket
import urllib.error
import xml.etree.ElementTree as ET
from datetime import date
from xml.parsers.expat import errors as expat_errors

import numpy as np
import pandas as pd

from finscale.data.retry import call_with_timeout
from finscale.data.sources.base import (
    OFFLINE_HINT,
    REALTIME_START,
    PermanentSourceError,
    SourceError,
    SourceUnreachableError,
    TransientSourceError,
    filter_dates,
    first_releases,
)

FRED_API_KEY_ENV = "FRED_API_KEY"
KEY_MASK = "***"
RETRYABLE_HTTP_STATUS = frozenset({408, 429})
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError, ConnectionError, http.client.HTTPException, OSError,
)
FRED_MAX_ROWS = 100_000  # FRED's per-request row limit (its default ``limit``)
RELEASE_COLUMNS = ("date", REALTIME_START, "value")  # fredapi's all-releases frame
# expat's code for a document without any element: an empty (or blank) body
EMPTY_DOCUMENT = expat_errors.codes[expat_errors.XML_ERROR_NO_ELEMENTS]


def _http_error_in_chain(exc: BaseException) -> urllib.error.HTTPError | None:
    """The HTTPError fredapi caught before raising ``exc`` (it keeps it only as context)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, urllib.error.HTTPError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def classify_fred_error(exc: BaseException, where: str) -> SourceError:
    """Map what fredapi raised to Transient / Unreachable / Permanent with a clear message."""
    http_error = _http_error_in_chain(exc)
    if http_error is not None:
        status = http_error.code
        fred_message = str(exc) if isinstance(exc, ValueError) else ""
        reason = fred_message if fred_message not in ("", "None") else http_error.reason
        message = f"{where}: HTTP {status}: {reason}"
        if status >= 500 or status in RETRYABLE_HTTP_STATUS:
            return TransientSourceError(message)
        return PermanentSourceError(f"{message} (bad API key or unknown series?)")
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, socket.gaierror | ConnectionRefusedError):
            return SourceUnreachableError(f"{where}: FRED unreachable: {reason}; {OFFLINE_HINT}")
        return TransientSourceError(f"{where}: network failure: {reason}; {OFFLINE_HINT}")
    if isinstance(exc, ET.ParseError):
        if exc.code == EMPTY_DOCUMENT:
            return PermanentSourceError(
                f"{where}: malformed reply: FRED answered with an empty body, not XML")
        return PermanentSourceError(
            f"{where}: malformed reply (not XML: an HTML page or a cut-off answer?): {exc}")
    if isinstance(exc, TRANSPORT_ERRORS):
        return TransientSourceError(f"{where}: network failure: {exc!r}; {OFFLINE_HINT}")
    if isinstance(exc, TypeError):
        # fredapi read a document whose elements carry no ``value``: float(None)
        return PermanentSourceError(
            f"{where}: malformed reply: FRED answered with a document that is not "
            f"observations XML (elements without values: an HTML page?)")
    if isinstance(exc, ValueError):
        return PermanentSourceError(f"{where}: malformed reply: {exc}")
    return TransientSourceError(f"{where}: unexpected failure: {exc!r}")


def _scrub(error: SourceError, secret: str) -> SourceError:
    """The same error with the API key masked wherever it appears in the message."""
    message = str(error)
    if secret and secret in message:
        return type(error)(message.replace(secret, KEY_MASK))
    return error


def first_release_frame(releases: pd.DataFrame, series_id: str, where: str) -> pd.DataFrame:
    """fredapi's all-releases frame (date, realtime_start, value per vintage) -> each
    observation's first published value and release day, in the macro layout."""
    if len(releases) >= FRED_MAX_ROWS:
        raise PermanentSourceError(
            f"{where}: the reply holds {len(releases)} vintage rows, FRED's per-request limit; "
            f"it may be cut, so it is not stored")
    if releases.empty:
        return first_releases(pd.DatetimeIndex([]), pd.DatetimeIndex([]), np.array([]),
                              series_id)
    missing = [c for c in RELEASE_COLUMNS if c not in releases.columns]
    if missing:
        raise PermanentSourceError(f"{where}: malformed reply: no {missing} in the vintages")
    try:
        dates = pd.DatetimeIndex(pd.to_datetime(releases["date"], errors="raise"))
        released = pd.DatetimeIndex(pd.to_datetime(releases[REALTIME_START], errors="raise"))
        numbers = pd.to_numeric(releases["value"], errors="raise").to_numpy(np.float64)
    except (ValueError, TypeError) as exc:
        raise PermanentSourceError(f"{where}: malformed reply: {exc}") from exc
    if dates.hasnans or released.hasnans:
        raise PermanentSourceError(f"{where}: malformed reply: a vintage without a date")
    return first_releases(dates, released, numbers, series_id)


class FredSource:
    """Macro series from the FRED API (``api_root`` configurable so tests use a local server)."""

    name = "fred"

    def __init__(self, *, api_root: str, timeout_s: float) -> None:
        self.api_root = api_root.rstrip("/")
        self.timeout_s = timeout_s

    def require_key(self, where: str = "fred") -> str:
        """The API key from the environment; PermanentSourceError naming the variable if unset.

        A refresh calls it once before its first series, so a missing key is one clear
        failure rather than the same failure for every series.
        """
        api_key = os.environ.get(FRED_API_KEY_ENV, "").strip()
        if not api_key:
            raise PermanentSourceError(
                f"{where}: ${FRED_API_KEY_ENV} is not set (FRED needs an API key); "
                f"{OFFLINE_HINT}"
            )
        return api_key

    def fetch_series(self, series_id: str, start: date | None, end: date | None) -> pd.DataFrame:
        """First releases of ``series_id`` with start <= date <= end, with their release day
        (``realtime_start``); the request is bounded by ``timeout_s``."""
        where = f"fred: {series_id}"
        api_key = self.require_key(where)
        failure: SourceError | None = None
        try:
            releases = call_with_timeout(
                lambda: self._get_all_releases(api_key, series_id),
                timeout_s=self.timeout_s,
                what=where,
                hint=OFFLINE_HINT,
            )
        except SourceError as exc:
            failure = _scrub(exc, api_key)
        except Exception as exc:
            failure = _scrub(classify_fred_error(exc, where), api_key)
        if failure is not None:
            # Raised outside the except block: no chained HTTPError (its URL holds the key).
            raise failure
        return filter_dates(first_release_frame(releases, series_id, where), start, end)

    def _get_all_releases(self, api_key: str, series_id: str) -> pd.DataFrame:
        """Every vintage of the series (fredapi has no observation window for this call)."""
        from fredapi import Fred  # deferred: only online runs pay for importing it

        client = Fred(api_key=api_key, proxies=None)
        client.root_url = self.api_root
        return client.get_series_all_releases(series_id)
