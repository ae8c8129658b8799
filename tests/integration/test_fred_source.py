"""FredSource through the real fredapi against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
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
from finscale.data.sources.base import REALTIME_START
from finscale.data.sources.fred import FRED_API_KEY_ENV, FredSource
from tests.support.fake_fred import REALTIME, FakeFredServer

pytestmark = pytest.mark.integration

API_KEY = "0123456789abcdef-test-key"
NO_WAIT = RetryConfig(attempts=4, base_delay_s=0.01, max_delay_s=0.01, jitter=0.0)
RECENT_START = "2016-01-01"


@pytest.fixture(scope="module")
def recent_fred_dir(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mirror's FRED files from RECENT_START on: fredapi parses every vintage row by row
    (about 10 s for DGS10's full history on this machine), far beyond these tests' timeouts."""
    folder = tmp_path_factory.mktemp("fred")
    for path in (shared_data_dir / "fred").glob("*.csv"):
        lines = path.read_text().splitlines()
        recent = [line for line in lines[1:] if line[:10] >= RECENT_START]
        (folder / path.name).write_text("\n".join([lines[0], *recent]) + "\n")
    return folder


@pytest.fixture()
def fred_server(recent_fred_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        FakeFredServer]:
    monkeypatch.setenv(FRED_API_KEY_ENV, API_KEY)
    with FakeFredServer(recent_fred_dir, api_key=API_KEY, hang_s=10) as server:
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
    """A plain file is one vintage (the fake's REALTIME): its values with that release day."""
    start, end = date(2019, 1, 1), date(2021, 6, 30)

    frame = fred_source(fred_server).fetch_series(series_id, start, end)

    expected = CsvMirrorSource(shared_data_dir).fetch_series(series_id, start, end)
    assert frame.index.name == MACRO_INDEX
    assert list(frame.columns) == [series_id, REALTIME_START]
    assert frame[series_id].dtype == np.float64 and len(frame) > 10
    assert list(frame.index) == list(expected.index)
    np.testing.assert_array_equal(frame[series_id].to_numpy(), expected[series_id].to_numpy())
    assert (frame[REALTIME_START] == pd.Timestamp(REALTIME)).all()
    request = fred_server.observation_requests()[-1]  # every vintage: fredapi's all-releases
    assert "realtime_start=1776-07-04" in request and "realtime_end=9999-12-31" in request


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


@pytest.mark.parametrize(("fault", "says"), [
    ("html", r"FRED answered with a document that is not observations XML "
             r"\(elements without values: an HTML page\?\)"),
    ("empty", r"FRED answered with an empty body, not XML"),
])
def test_html_or_empty_200_answer_says_so(
    fred_server: FakeFredServer, fault: str, says: str
) -> None:
    """Issue 8, item 9: a 200 answer that is an HTML page or nothing at all is named as such
    (it used to surface as "float() argument must be ... not 'NoneType'")."""
    fred_server.fail_next(fault)  # type: ignore[arg-type]
    source = fred_source(fred_server)
    expected = rf"fred: DGS10: malformed reply: {says}"
    with pytest.raises(PermanentSourceError, match=expected) as info:
        source.fetch_series("DGS10", None, None)
    assert "NoneType" not in str(info.value)
    assert len(fred_server.observation_requests()) == 1


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
    for fault in ("500", "malformed", "html", "empty", "hang"):
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
