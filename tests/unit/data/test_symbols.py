"""Tickers and series ids match one strict pattern at every boundary; a name that escapes the
mirror, rewrites a query or is junk is refused before it is read, stored or logged, and a
mirror file that resolves outside the mirror (a symlink) is refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from finscale.config import ConfigError, load_config
from finscale.data.config import DataConfig
from finscale.data.refresh import RefreshStatus, refresh_macro, refresh_universe
from finscale.data.refresh_log import RefreshLog
from finscale.data.sources.csv_mirror import CsvMirrorSource
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

GOOD = ["SPY", "VIX", "BRK-B", "BF.B", "DGS10", "T10Y2Y", "BAMLH0A0HYM2", "CPI_X"]
BAD = ["../../x", "/etc/passwd", "DGS10&api_key=x", "spy", "", "A..B", "X/Y", "-SPY",
       "SPY ", "A" * 33, "DGS10?x=1", "..", "C:\\x"]


class RecordingMacroSource:
    """A macro source that records every series id it is asked for."""

    name = "recording"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def fetch_series(self, series_id: str, start: date | None, end: date | None) -> pd.DataFrame:
        self.asked.append(series_id)
        index = pd.DatetimeIndex(["2024-01-02"], name="date")
        return pd.DataFrame({series_id: [1.0]}, index=index)


def _logged_names(manifest: Manifest) -> set[str]:
    check_log = RefreshLog(manifest.url)
    try:
        return set(check_log.last_checks())
    finally:
        check_log.close()


@pytest.mark.parametrize("name", GOOD)
def test_valid_names_pass_the_config(name: str) -> None:
    assert DataConfig(tickers=(name,), fred_series=(name,)).tickers == (name,)


@pytest.mark.parametrize("name", BAD)
def test_invalid_names_fail_the_config(name: str) -> None:
    with pytest.raises(ValidationError, match="not a valid ticker or series id"):
        DataConfig(tickers=(name,))
    with pytest.raises(ValidationError, match="fred_series"):
        DataConfig(fred_series=("DGS10", name))


def test_config_file_with_a_bad_ticker_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  tickers: [SPY, '../../x']\n")
    with pytest.raises(ConfigError, match=r"data\.tickers.*\.\./\.\./x"):
        load_config(path)


def test_a_ticker_outside_the_mirror_is_never_read_or_registered(
    shared_data_dir: Path, tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "market").mkdir(parents=True)
    # what ``../../x`` points at from <mirror>/market: a readable, valid file outside
    (tmp_path / "x.csv").write_bytes((shared_data_dir / "market" / "SPY.csv").read_bytes())
    source = CsvMirrorSource(mirror)

    with pytest.raises(ValueError, match=r"'\.\./\.\./x' is not a valid ticker"):
        refresh_universe(manifest, workspace, DataConfig(), market_source=source,
                         macro_source=source, tickers=["SPY", "../../x"], fred_series=[])

    assert manifest.all_versions() == [] and _logged_names(manifest) == set()


def test_a_series_id_that_rewrites_the_query_never_reaches_the_source(
    workspace: Workspace, manifest: Manifest
) -> None:
    source = RecordingMacroSource()

    with pytest.raises(ValueError, match="DGS10&api_key=x"):
        refresh_macro(manifest, workspace, source, "DGS10&api_key=x", DataConfig())

    assert source.asked == [] and _logged_names(manifest) == set()
    assert refresh_macro(manifest, workspace, source, "DGS10", DataConfig()).rows == 1


@pytest.mark.parametrize("kind", ["market", "fred"])
def test_a_mirror_file_linked_outside_the_mirror_is_refused(
    kind: str, shared_data_dir: Path, tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    name = "SPY" if kind == "market" else "DGS10"
    mirror = tmp_path / "mirror"
    (mirror / kind).mkdir(parents=True)
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes((shared_data_dir / kind / f"{name}.csv").read_bytes())
    (mirror / kind / f"{name}.csv").symlink_to(outside)
    source = CsvMirrorSource(mirror)

    (summary,) = refresh_universe(
        manifest, workspace, DataConfig(), market_source=source, macro_source=source,
        tickers=[name] if kind == "market" else [], fred_series=[name] if kind == "fred" else [])

    assert summary.status is RefreshStatus.FAILED
    assert "outside the mirror" in summary.reason and str(outside) in summary.reason
    assert manifest.all_versions() == []


def test_a_link_that_stays_inside_the_mirror_is_read(
    shared_data_dir: Path, tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "market").mkdir(parents=True)
    real = mirror / "market" / "spy-2024.csv"
    real.write_bytes((shared_data_dir / "market" / "SPY.csv").read_bytes())
    (mirror / "market" / "SPY.csv").symlink_to(real)
    source = CsvMirrorSource(mirror)

    (summary,) = refresh_universe(manifest, workspace, DataConfig(), market_source=source,
                                  macro_source=None, tickers=["SPY"])

    assert summary.status is RefreshStatus.NEW_ROWS and summary.rows == 7802
