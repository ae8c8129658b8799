"""YahooSource against yfinance's real parsing, fed through its session= seam from real CSVs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from finscale.data.config import DataConfig, RetryConfig
from finscale.data.refresh import RefreshStatus, refresh_universe
from finscale.data.retry import call_with_retry
from finscale.data.sources import (
    MARKET_COLUMNS,
    MARKET_INDEX,
    CsvMirrorSource,
    PermanentSourceError,
    SourceUnreachableError,
    TransientSourceError,
    make_market_source,
)
from finscale.data.sources.yahoo import YahooSource
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace
from tests.support import IMPORT_ROOT
from tests.support.fake_yahoo import (
    FAKE_THREAD_NAMES,
    FakeYahooServer,
    YahooMode,
    fake_yahoo_session,
)
from tests.support.processes import isolated_call_children

pytestmark = pytest.mark.integration

FLOAT32_TOLERANCE = 1e-6
HANG_BOUND_S = 10.0
TIMEOUT_S = 3.0
MakeYahoo = Callable[..., tuple[FakeYahooServer, YahooSource]]


@pytest.fixture()
def yahoo(
    shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeYahoo]:
    """Factory: (fake server, YahooSource using it) for a fault mode and timeout."""
    servers = ExitStack()
    monkeypatch.setenv("PYTHONPATH", str(IMPORT_ROOT))  # the download's child unpickles the session

    def make(
        mode: YahooMode = "ok", timeout_s: float = 10.0, dns_failure: bool = False
    ) -> tuple[FakeYahooServer, YahooSource]:
        server = servers.enter_context(FakeYahooServer(shared_data_dir / "market", mode=mode))
        config = DataConfig(source="yahoo", timeout_s=timeout_s)
        source = make_market_source(config, None, cache_dir=tmp_path / "yf-cache",
                                    session=fake_yahoo_session(server, dns_failure=dns_failure))
        assert isinstance(source, YahooSource)
        return server, source

    with servers:  # leaving releases hung requests, so no handler outlives the test
        yield make


@pytest.mark.parametrize(
    ("ticker", "start", "end"),
    [("SPY", date(2020, 2, 3), date(2020, 4, 30)), ("VIX", date(2020, 3, 2), date(2020, 3, 31)),
     ("QQQ", date(2008, 9, 1), date(2008, 12, 31))],
)
def test_normalised_frame_equals_the_csv_rows(
    yahoo: MakeYahoo, shared_data_dir: Path, ticker: str, start: date, end: date
) -> None:
    server, source = yahoo()

    bars = source.fetch_bars(ticker, start, end)

    expected = CsvMirrorSource(shared_data_dir).fetch_bars(ticker, start, end)
    assert bars.index.name == MARKET_INDEX and bars.index.tz is None
    assert (bars.index == bars.index.normalize()).all()
    assert tuple(bars.columns) == MARKET_COLUMNS
    assert all(dtype == np.float64 for dtype in bars.dtypes)
    assert list(bars.index) == list(expected.index)
    np.testing.assert_allclose(bars.to_numpy(), expected.to_numpy(), rtol=FLOAT32_TOLERANCE)
    symbol = "%5EVIX" if ticker == "VIX" else ticker
    assert any(f"/v8/finance/chart/{symbol}?" in url for url in server.chart_requests())


def test_unknown_symbol_is_permanent(yahoo: MakeYahoo) -> None:
    _, source = yahoo()
    with pytest.raises(PermanentSourceError, match=r"ZZZZ.*unknown or delisted"):
        source.fetch_bars("ZZZZ", date(2020, 1, 2), date(2020, 1, 31))


def test_network_down_is_a_transient_failure_not_no_new_rows(yahoo: MakeYahoo) -> None:
    server, source = yahoo(mode="down")

    with pytest.raises(TransientSourceError, match=r"SPY.*network failure.*--mirror") as info:
        source.fetch_bars("SPY", date(2020, 1, 2), date(2020, 1, 31))

    assert not isinstance(info.value, PermanentSourceError)
    assert server.requests_seen, "yfinance never reached the fake server"


def test_network_down_is_retried_then_reported(yahoo: MakeYahoo) -> None:
    server, source = yahoo(mode="down")
    sleeps: list[float] = []
    retry = RetryConfig(attempts=3, base_delay_s=0.5, jitter=0.0)

    with pytest.raises(TransientSourceError, match=r"yahoo SPY: failed after 3 attempt"):
        call_with_retry(lambda: source.fetch_bars("SPY", date(2020, 1, 2), date(2020, 1, 31)),
                        retry=retry, what="yahoo SPY", sleep=sleeps.append)

    assert sleeps == [0.5, 1.0]
    assert len(server.chart_requests()) >= 3  # each attempt really asked again


def test_dns_failure_fails_fast_naming_mirror(yahoo: MakeYahoo) -> None:
    _, source = yahoo(dns_failure=True)
    sleeps: list[float] = []
    with pytest.raises(SourceUnreachableError, match=r"unreachable.*--mirror"):
        call_with_retry(lambda: source.fetch_bars("SPY", date(2020, 1, 2), None),
                        retry=RetryConfig(), what="yahoo SPY", sleep=sleeps.append)
    assert sleeps == []


def test_hung_call_is_bounded_by_the_timeout(yahoo: MakeYahoo) -> None:
    server, source = yahoo(mode="hang", timeout_s=1.0)
    started = time.monotonic()

    with pytest.raises(TransientSourceError, match=r"yahoo: SPY.*no answer within the 1s timeout"):
        source.fetch_bars("SPY", date(2020, 1, 2), date(2020, 1, 31))

    # 1 s plus the child's start (~1 s, slower on a loaded machine); the fake hangs 30 s
    assert time.monotonic() - started < HANG_BOUND_S
    server.release()
    # the source is usable again once the network answers
    server.mode = "ok"
    assert len(source.fetch_bars("SPY", date(2020, 1, 2), date(2020, 1, 31))) == 21


def _own_threads() -> set[str]:
    """This process's threads, less the fake server's (they serve the hung request)."""
    return {f"{t.name}:{t.ident}" for t in threading.enumerate()
            if t.name not in FAKE_THREAD_NAMES}


def test_one_hung_ticker_costs_only_its_own_series(
    yahoo: MakeYahoo, workspace: Workspace
) -> None:
    """SPY's chart request hangs: SPY fails after its attempts, DIA, QQQ and VIX are stored."""
    server, source = yahoo(timeout_s=TIMEOUT_S)
    server.hang_symbols = frozenset({"SPY"})
    config = DataConfig(source="yahoo", timeout_s=TIMEOUT_S,
                        retry=RetryConfig(attempts=2, base_delay_s=0.1, jitter=0.0))
    manifest = Manifest.for_workspace(workspace)
    threads_before = _own_threads()

    summaries = refresh_universe(manifest, workspace, config, market_source=source,
                                 macro_source=None, tickers=["SPY", "DIA", "QQQ", "VIX"],
                                 fred_series=[])

    by_symbol = {s.symbol: s for s in summaries}
    assert by_symbol["SPY"].status is RefreshStatus.FAILED
    assert "no answer within the 3s timeout" in by_symbol["SPY"].reason
    assert {t: by_symbol[t].status for t in ("DIA", "QQQ", "VIX")} == dict.fromkeys(
        ("DIA", "QQQ", "VIX"), RefreshStatus.NEW_ROWS)
    assert sum("/chart/SPY?" in url for url in server.chart_requests()) == 2  # one per attempt
    # no worker thread or child process outlives its call, while SPY's requests still hang
    assert _own_threads() == threads_before
    assert isolated_call_children() == []
    assert manifest.latest("raw/market/SPY") is None
    manifest.close()
