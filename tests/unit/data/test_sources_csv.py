"""The csv mirror source over the real shared data, its errors, and the source factories."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finscale.data.config import MIRROR_ENV, DataConfig
from finscale.data.sources import (
    MACRO_INDEX,
    MARKET_COLUMNS,
    MARKET_INDEX,
    CsvMirrorSource,
    PermanentSourceError,
    make_macro_source,
    make_market_source,
    resolve_mirror,
    serves_macro,
    serves_market,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_market_layout_and_values_match_the_file(shared_data_dir: Path) -> None:
    bars = CsvMirrorSource(shared_data_dir).fetch_bars("SPY", None, None)

    assert bars.index.name == MARKET_INDEX
    assert isinstance(bars.index, pd.DatetimeIndex) and bars.index.tz is None
    assert tuple(bars.columns) == MARKET_COLUMNS
    assert all(dtype == np.float64 for dtype in bars.dtypes)
    assert len(bars) == 7802 and bars.index.is_monotonic_increasing
    assert bars.loc["1993-01-29", "Close"] == pytest.approx(43.9375)
    assert bars.loc["2020-03-23", "Close"] == pytest.approx(222.949997)


def test_vix_zero_volume_and_date_filter_is_inclusive(shared_data_dir: Path) -> None:
    bars = CsvMirrorSource(shared_data_dir).fetch_bars("VIX", date(2020, 3, 16), date(2020, 3, 23))

    assert list(bars.index.strftime("%Y-%m-%d")) == [
        "2020-03-16", "2020-03-17", "2020-03-18", "2020-03-19", "2020-03-20", "2020-03-23"]
    assert bars.loc["2020-03-16", "Close"] == pytest.approx(82.690002)
    assert (bars["Volume"] == 0).all()


def test_fred_layout_and_filter(shared_data_dir: Path) -> None:
    frame = CsvMirrorSource(shared_data_dir).fetch_series("DGS10", date(2020, 3, 2), None)

    assert frame.index.name == MACRO_INDEX and list(frame.columns) == ["DGS10"]
    assert frame["DGS10"].dtype == np.float64
    assert frame.index.min() == pd.Timestamp("2020-03-02")
    raw = pd.read_csv(shared_data_dir / "fred" / "DGS10.csv", index_col="date", parse_dates=True)
    expected = raw.loc[raw.index >= "2020-03-02", "DGS10"].astype("float64")
    np.testing.assert_array_equal(frame["DGS10"].to_numpy(), expected.to_numpy())


def test_fred_missing_markers_are_dropped(tmp_path: Path) -> None:
    write(tmp_path / "fred" / "DGS2.csv", "date,DGS2\n2020-01-02,1.5\n2020-01-03,.\n"
          "2020-01-06,\n2020-01-07,1.6\n")
    frame = CsvMirrorSource(tmp_path).fetch_series("DGS2", None, None)
    assert list(frame["DGS2"]) == [1.5, 1.6]


def test_unknown_ticker_names_the_file_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(PermanentSourceError, match=r"ZZZ.*market/ZZZ\.csv does not exist"):
        CsvMirrorSource(tmp_path).fetch_bars("ZZZ", None, None)
    with pytest.raises(PermanentSourceError, match=r"fred/NOPE\.csv"):
        CsvMirrorSource(tmp_path).fetch_series("NOPE", None, None)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,1,2,5\n",
         r"SPY\.csv: missing column\(s\) \['Adj Close'\]"),
        ("Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,abc,2,2,5\n",
         r"SPY\.csv: column 'Low': not a number \(row 2: 'abc'\)"),
        ("Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,1,2,2,5\n"
         "02/01/2020,1,2,1,2,2,5\n",
         r"SPY\.csv: column 'Date': not a YYYY-MM-DD date \(row 3: '02/01/2020'\)"),
        ("", r"SPY\.csv: unreadable CSV"),
    ],
)
def test_malformed_market_file_names_file_column_and_reason(
    tmp_path: Path, content: str, expected: str
) -> None:
    write(tmp_path / "market" / "SPY.csv", content)
    with pytest.raises(PermanentSourceError, match=expected):
        CsvMirrorSource(tmp_path).fetch_bars("SPY", None, None)


def test_malformed_fred_file_names_columns(tmp_path: Path) -> None:
    write(tmp_path / "fred" / "DGS2.csv", "DATE,VALUE\n2020-01-02,1.5\n")
    with pytest.raises(PermanentSourceError, match=r"DGS2\.csv: columns \['DATE', 'VALUE'\]"):
        CsvMirrorSource(tmp_path).fetch_series("DGS2", None, None)


def test_factories_map_source_names_to_classes(shared_data_dir: Path, tmp_path: Path) -> None:
    from finscale.data.sources.fred import FredSource
    from finscale.data.sources.yahoo import YahooSource

    csv = DataConfig(source="csv")
    assert isinstance(make_market_source(csv, shared_data_dir), CsvMirrorSource)
    assert isinstance(make_macro_source(csv, shared_data_dir), CsvMirrorSource)
    # yahoo = bars only, fred = series only, online = both from the vendors
    expected = {"yahoo": (True, False), "fred": (False, True), "online": (True, True)}
    for online, (has_market, has_macro) in expected.items():
        config = DataConfig(source=online, fred_api_root="http://127.0.0.1:9/fred", timeout_s=3)
        market = make_market_source(config, None, cache_dir=tmp_path / "yf")
        macro = make_macro_source(config, None)
        assert (market is not None, macro is not None) == (has_market, has_macro), online
        assert (serves_market(online), serves_macro(online)) == (has_market, has_macro)
        if market is not None:
            assert isinstance(market, YahooSource) and market.timeout_s == 3
            assert market.cache_dir == tmp_path / "yf"
        if macro is not None:
            assert isinstance(macro, FredSource)
            assert macro.api_root == "http://127.0.0.1:9/fred"


def test_mirror_resolution_order(
    shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MIRROR_ENV, str(shared_data_dir))
    assert resolve_mirror(DataConfig(), None) == shared_data_dir
    assert resolve_mirror(DataConfig(mirror=tmp_path), None) == tmp_path
    assert resolve_mirror(DataConfig(mirror=tmp_path), shared_data_dir) == shared_data_dir
    monkeypatch.delenv(MIRROR_ENV)
    with pytest.raises(PermanentSourceError, match=rf"--mirror DIR.*{MIRROR_ENV}"):
        make_market_source(DataConfig(source="csv"), None)
    with pytest.raises(PermanentSourceError, match=r"does not exist"):
        resolve_mirror(DataConfig(), tmp_path / "absent")
