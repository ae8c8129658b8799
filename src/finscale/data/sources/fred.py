"""The ``fred`` source: FRED observations through fredapi, normalised to the macro layout.

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

import pandas as pd

from finscale.data.retry import call_with_timeout
from finscale.data.sources.base import (
    MACRO_INDEX,
    OFFLINE_HINT,
    PermanentSourceError,
    SourceError,
    SourceUnreachableError,
    TransientSourceError,
)

FRED_API_KEY_ENV = "FRED_API_KEY"
KEY_MASK = "***"
RETRYABLE_HTTP_STATUS = frozenset({408, 429})
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError, ConnectionError, http.client.HTTPException, OSError,
)


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
        return PermanentSourceError(f"{where}: malformed reply (not XML): {exc}")
    if isinstance(exc, TRANSPORT_ERRORS):
        return TransientSourceError(f"{where}: network failure: {exc!r}; {OFFLINE_HINT}")
    if isinstance(exc, ValueError | TypeError):
        return PermanentSourceError(f"{where}: malformed reply: {exc}")
    return TransientSourceError(f"{where}: unexpected failure: {exc!r}")


def _scrub(error: SourceError, secret: str) -> SourceError:
    """The same error with the API key masked wherever it appears in the message."""
    message = str(error)
    if secret and secret in message:
        return type(error)(message.replace(secret, KEY_MASK))
    return error


def observations_frame(values: pd.Series, series_id: str, where: str) -> pd.DataFrame:
    """fredapi's Series -> the macro layout (missing observations dropped)."""
    try:
        index = pd.DatetimeIndex(pd.to_datetime(values.index, errors="raise"))
        numbers = pd.to_numeric(values, errors="raise").astype("float64").to_numpy()
    except (ValueError, TypeError) as exc:
        raise PermanentSourceError(f"{where}: malformed reply: {exc}") from exc
    if index.hasnans:
        raise PermanentSourceError(f"{where}: malformed reply: observation without a date")
    frame = pd.DataFrame({series_id: numbers}, index=index.normalize())
    frame.index.name = MACRO_INDEX
    return frame.dropna().sort_index()


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
        """Observations of ``series_id`` with start <= date <= end, bounded by ``timeout_s``."""
        where = f"fred: {series_id}"
        api_key = self.require_key(where)
        failure: SourceError | None = None
        try:
            values = call_with_timeout(
                lambda: self._get_series(api_key, series_id, start, end),
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
        return observations_frame(values, series_id, where)

    def _get_series(
        self, api_key: str, series_id: str, start: date | None, end: date | None
    ) -> pd.Series:
        from fredapi import Fred  # deferred: only online runs pay for importing it

        client = Fred(api_key=api_key, proxies=None)
        client.root_url = self.api_root
        return client.get_series(series_id, observation_start=start, observation_end=end)
