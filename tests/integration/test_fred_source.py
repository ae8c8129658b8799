"""FredSource through the real fredapi against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from finscale.data.config import DataConfig, RetryConfig
from finscale.data.retry import call_with_retry
from finscale.data.sources import (
    MACRO_INDEX,
    CsvMirrorSource,
    PermanentSourceError,
    SourceUnreachableError,
    TransientSourceError,
    make_macro_source,
)
from finscale.data.sources.fred import FRED_API_KEY_ENV, FredSource
from tests.support.fake_fred import FakeFredServer

pytestmark = pytest.mark.integration

API_KEY = "0123456789abcdef-test-key"
NO_WAIT = RetryConfig(attempts=4, base_delay_s=0.01, max_delay_s=0.01, jitter=0.0)


@pytest.fixture()
def fred_server(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        FakeFredServer]:
    monkeypatch.setenv(FRED_API_KEY_ENV, API_KEY)
    with FakeFredServer(shared_data_dir / "fred", api_key=API_KEY, hang_s=10) as server:
        yield server


def fred_source(server: FakeFredServer, timeout_s: float = 5.0) -> FredSource:
    config = DataConfig(source="fred", fred_api_root=server.root_url, timeout_s=timeout_s)
    source = make_macro_source(config, None)
    assert isinstance(source, FredSource)
    return source


@pytest.mark.parametrize("series_id", ["DGS10", "CPIAUCSL", "BAMLH0A0HYM2"])
def test_observations_equal_the_csv(
    fred_server: FakeFredServer, shared_data_dir: Path, series_id: str
) -> None:
    start, end = date(2019, 1, 1), date(2021, 6, 30)

    frame = fred_source(fred_server).fetch_series(series_id, start, end)

    expected = CsvMirrorSource(shared_data_dir).fetch_series(series_id, start, end)
    assert frame.index.name == MACRO_INDEX and list(frame.columns) == [series_id]
    assert frame[series_id].dtype == np.float64 and len(frame) > 10
    assert list(frame.index) == list(expected.index)
    np.testing.assert_array_equal(frame[series_id].to_numpy(), expected[series_id].to_numpy())
    assert "observation_start=2019-01-01" in fred_server.observation_requests()[-1]


def test_http_500_twice_then_success_retries_win(fred_server: FakeFredServer) -> None:
    source = fred_source(fred_server)
    fred_server.fail_next("500", times=2)
    sleeps: list[float] = []

    frame = call_with_retry(lambda: source.fetch_series("DGS2", date(2020, 1, 1), None),
                            retry=NO_WAIT, what="fred DGS2", sleep=sleeps.append)

    assert len(fred_server.observation_requests()) == 3
    assert len(sleeps) == 2
    assert frame.index.min() >= np.datetime64("2020-01-01") and not frame.empty


def test_http_500_every_time_gives_up_naming_attempts(fred_server: FakeFredServer) -> None:
    fred_server.fail_next("500", times=10)
    source = fred_source(fred_server)
    with pytest.raises(TransientSourceError, match=r"failed after 4 attempt.*HTTP 500"):
        call_with_retry(lambda: source.fetch_series("DGS2", None, None),
                        retry=NO_WAIT, what="fred DGS2", sleep=lambda _: None)
    assert len(fred_server.observation_requests()) == 4


def test_hung_response_times_out_with_a_clear_error(fred_server: FakeFredServer) -> None:
    fred_server.fail_next("hang")
    started = time.monotonic()
    with pytest.raises(TransientSourceError, match=r"fred: DGS10: no answer within the 1s"):
        fred_source(fred_server, timeout_s=1.0).fetch_series("DGS10", None, None)
    assert time.monotonic() - started < 4


def test_malformed_body_is_permanent_and_clear(fred_server: FakeFredServer) -> None:
    fred_server.fail_next("malformed", times=5)
    source = fred_source(fred_server)
    written: list[object] = []

    with pytest.raises(PermanentSourceError, match=r"fred: DGS10: malformed reply"):
        call_with_retry(lambda: written.append(source.fetch_series("DGS10", None, None)),
                        retry=NO_WAIT, what="fred DGS10", sleep=lambda _: None)

    assert written == []  # nothing reached the caller's write step
    assert len(fred_server.observation_requests()) == 1  # permanent: not retried


def test_unknown_series_is_permanent(fred_server: FakeFredServer) -> None:
    with pytest.raises(PermanentSourceError, match=r"fred: NOSUCH: HTTP 400.*does not exist"):
        fred_source(fred_server).fetch_series("NOSUCH", None, None)


def test_bad_key_is_permanent_and_never_echoed(
    fred_server: FakeFredServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_key = "wrong-key-0000-secret"
    monkeypatch.setenv(FRED_API_KEY_ENV, wrong_key)
    with pytest.raises(PermanentSourceError, match=r"HTTP 400.*api_key") as info:
        fred_source(fred_server).fetch_series("DGS10", None, None)
    assert wrong_key in fred_server.observation_requests()[-1]  # it was sent ...
    assert wrong_key not in str(info.value)  # ... but never shown
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_key_never_appears_in_any_error_message(
    fred_server: FakeFredServer, caplog: pytest.LogCaptureFixture
) -> None:
    messages: list[str] = []
    for fault in ("500", "malformed", "hang"):
        fred_server.fail_next(fault)
        with pytest.raises(Exception) as info:
            fred_source(fred_server, timeout_s=1.0).fetch_series("DGS10", None, None)
        messages.append(str(info.value))
    assert all(API_KEY not in m for m in messages)
    assert API_KEY not in caplog.text


def test_missing_key_names_the_variable_and_the_offline_route(
    fred_server: FakeFredServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FRED_API_KEY_ENV)
    with pytest.raises(PermanentSourceError, match=r"FRED_API_KEY.*--source csv --mirror DIR"):
        fred_source(fred_server).fetch_series("DGS10", None, None)
    assert fred_server.paths_seen == []


def test_connection_refused_fails_fast_naming_mirror(
    fred_server: FakeFredServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = fred_server.root_url
    fred_server.close()  # nothing listens on that port any more
    source = FredSource(api_root=root, timeout_s=5)
    sleeps: list[float] = []
    with pytest.raises(SourceUnreachableError, match=r"FRED unreachable.*--mirror"):
        call_with_retry(lambda: source.fetch_series("DGS10", None, None),
                        retry=RetryConfig(), what="fred DGS10", sleep=sleeps.append)
    assert sleeps == []
