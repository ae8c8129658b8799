"""YahooSource against yfinance's real parsing, fed through its session= seam from real CSVs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from finscale.data.config import DataConfig, RetryConfig
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
from tests.support.fake_yahoo import FakeYahooAdapter, YahooMode, fake_yahoo_session

pytestmark = pytest.mark.integration

FLOAT32_TOLERANCE = 1e-6
MakeYahoo = Callable[..., tuple[FakeYahooAdapter, YahooSource]]


@pytest.fixture()
def yahoo(shared_data_dir: Path, tmp_path: Path) -> Iterator[MakeYahoo]:
    """Factory: (fake adapter, YahooSource using it) for a fault mode and timeout."""
    adapters: list[FakeYahooAdapter] = []

    def make(
        mode: YahooMode = "ok", timeout_s: float = 10.0
    ) -> tuple[FakeYahooAdapter, YahooSource]:
        adapter = FakeYahooAdapter(shared_data_dir / "market", mode=mode)
        adapters.append(adapter)
        config = DataConfig(source="yahoo", timeout_s=timeout_s)
        source = make_market_source(config, None, cache_dir=tmp_path / "yf-cache",
                                    session=fake_yahoo_session(adapter))
        assert isinstance(source, YahooSource)
        return adapter, source

    yield make
    for adapter in adapters:
        adapter.release()  # no hung worker outlives the test


@pytest.mark.parametrize(
    ("ticker", "start", "end"),
    [("SPY", date(2020, 2, 3), date(2020, 4, 30)), ("VIX", date(2020, 3, 2), date(2020, 3, 31)),
     ("QQQ", date(2008, 9, 1), date(2008, 12, 31))],
)
def test_normalised_frame_equals_the_csv_rows(
    yahoo: MakeYahoo, shared_data_dir: Path, ticker: str, start: date, end: date
) -> None:
    adapter, source = yahoo()

    bars = source.fetch_bars(ticker, start, end)

    expected = CsvMirrorSource(shared_data_dir).fetch_bars(ticker, start, end)
    assert bars.index.name == MARKET_INDEX and bars.index.tz is None
    assert (bars.index == bars.index.normalize()).all()
    assert tuple(bars.columns) == MARKET_COLUMNS
    assert all(dtype == np.float64 for dtype in bars.dtypes)
    assert list(bars.index) == list(expected.index)
    np.testing.assert_allclose(bars.to_numpy(), expected.to_numpy(), rtol=FLOAT32_TOLERANCE)
    symbol = "%5EVIX" if ticker == "VIX" else ticker
    assert any(f"/v8/finance/chart/{symbol}?" in url for url in adapter.chart_requests())


def test_unknown_symbol_is_permanent(yahoo: MakeYahoo) -> None:
    _, source = yahoo()
    with pytest.raises(PermanentSourceError, match=r"ZZZZ.*unknown or delisted"):
        source.fetch_bars("ZZZZ", date(2020, 1, 2), date(2020, 1, 31))


def test_network_down_is_a_transient_failure_not_no_new_rows(yahoo: MakeYahoo) -> None:
    adapter, source = yahoo(mode="down")

    with pytest.raises(TransientSourceError, match=r"SPY.*network failure.*--mirror") as info:
        source.fetch_bars("SPY", date(2020, 1, 2), date(2020, 1, 31))

    assert not isinstance(info.value, PermanentSourceError)
    assert adapter.requests_seen, "yfinance never reached the session seam"


def test_network_down_is_retried_then_reported(yahoo: MakeYahoo) -> None:
    adapter, source = yahoo(mode="down")
    sleeps: list[float] = []
    retry = RetryConfig(attempts=3, base_delay_s=0.5, jitter=0.0)

    with pytest.raises(TransientSourceError, match=r"yahoo SPY: failed after 3 attempt"):
        call_with_retry(lambda: source.fetch_bars("SPY", date(2020, 1, 2), date(2020, 1, 31)),
                        retry=retry, what="yahoo SPY", sleep=sleeps.append)

    assert sleeps == [0.5, 1.0]
    assert len(adapter.chart_requests()) >= 3  # each attempt really asked again


def test_dns_failure_fails_fast_naming_mirror(yahoo: MakeYahoo) -> None:
    _, source = yahoo(mode="dns")
    sleeps: list[float] = []
    with pytest.raises(SourceUnreachableError, match=r"unreachable.*--mirror"):
        call_with_retry(lambda: source.fetch_bars("SPY", date(2020, 1, 2), None),
                        retry=RetryConfig(), what="yahoo SPY", sleep=sleeps.append)
    assert sleeps == []


def test_hung_call_is_bounded_by_the_timeout(yahoo: MakeYahoo) -> None:
    adapter, source = yahoo(mode="hang", timeout_s=1.0)
    started = time.monotonic()

    with pytest.raises(TransientSourceError, match=r"yahoo: SPY.*no answer within the 1s timeout"):
        source.fetch_bars("SPY", date(2020, 1, 2), date(2020, 1, 31))

    assert time.monotonic() - started < 4
    adapter.release()
    # the source is usable again once the network answers
    adapter.mode = "ok"
    assert len(source.fetch_bars("SPY", date(2020, 1, 2), date(2020, 1, 31))) == 21
