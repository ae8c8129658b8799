"""FRED vintages end to end: the fake FRED serves CPI vintages over HTTP, the refresh stores
each month's first release with its real release day, and the macro features see a late
release (Sept 2013 CPI, published 30 Oct in the shutdown) only from that day."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from finscale.config import load_config
from finscale.data.config import DataConfig
from finscale.data.refresh import RefreshStatus, fred_artifact_name, refresh_macro
from finscale.data.sources.base import REALTIME_START
from finscale.data.sources.csv_mirror import CsvMirrorSource
from finscale.data.sources.fred import FRED_API_KEY_ENV, FredSource
from finscale.features.config import FeaturesConfig
from finscale.features.macro import compute_macro_features, load_macro_tier
from finscale.manifest.artifacts import load_latest
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace
from tests.support.fake_fred import FakeFredServer

assert load_config  # finscale.config first: avoids the config <-> data.config import cycle

pytestmark = pytest.mark.integration

API_KEY = "vintage-test-key"
CPI = "CPIAUCSL"
FIRST_VINTAGE = "2013-08-15"  # ALFRED's first vintage here: back-fills the older months
RELEASES = {  # BLS release days of the CPI, Aug 2013 .. Mar 2014 (Sept: the shutdown delay)
    "2013-08-01": "2013-09-17", "2013-09-01": "2013-10-30", "2013-10-01": "2013-11-20",
    "2013-11-01": "2013-12-17", "2013-12-01": "2014-01-16", "2014-01-01": "2014-02-20",
    "2014-02-01": "2014-03-18", "2014-03-01": "2014-04-15",
}
REVISION_DAY = "2014-02-21"  # the annual seasonal revision restates the 2013 months
FIRST_RELEASE_OFFSET = -0.05  # first releases differ from today's (revised) values


@pytest.fixture()
def revised(shared_data_dir: Path) -> pd.Series:
    """Today's CPI values (the mirror), 2011-01 .. 2014-03."""
    cpi = CsvMirrorSource(shared_data_dir).fetch_series(CPI, None, None)[CPI]
    return cpi.loc["2011-01-01":"2014-03-01"]


def vintage_csv(revised: pd.Series) -> str:
    """One row per (month, release): first releases, then the 2014 revision of 2013."""
    rows = ["date,realtime_start,CPIAUCSL"]
    for month, value in revised.items():
        day = month.strftime("%Y-%m-%d")
        released = RELEASES.get(day, FIRST_VINTAGE)
        rows.append(f"{day},{released},{value + FIRST_RELEASE_OFFSET:.3f}")
        if released < REVISION_DAY and month.year == 2013:
            rows.append(f"{day},{REVISION_DAY},{value:.3f}")
    return "\n".join(rows) + "\n"


@pytest.fixture()
def server(tmp_path: Path, revised: pd.Series, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        FakeFredServer]:
    (tmp_path / "fred").mkdir()
    (tmp_path / "fred" / f"{CPI}.csv").write_text(vintage_csv(revised))
    monkeypatch.setenv(FRED_API_KEY_ENV, API_KEY)
    with FakeFredServer(tmp_path / "fred", api_key=API_KEY) as fake:
        yield fake


@pytest.fixture()
def manifest(workspace: Workspace) -> Iterator[Manifest]:
    manifest = Manifest(workspace.manifest_url, workspace.home)
    yield manifest
    manifest.close()


def cpi_mom(stored: pd.DataFrame, days: pd.DatetimeIndex) -> pd.Series:
    tier = load_macro_tier("configs/features")
    kept = tuple(d for d in tier.declarations if d.name == "cpi_mom")
    table = compute_macro_features({CPI: stored}, days, FeaturesConfig(),
                                   tier=tier.model_copy(update={"declarations": kept}))
    return table["cpi_mom"]


def test_refresh_stores_first_releases_and_features_wait_for_the_late_one(
    server: FakeFredServer, manifest: Manifest, workspace: Workspace, revised: pd.Series,
    spy_days: pd.DatetimeIndex,
) -> None:
    source = FredSource(api_root=server.root_url, timeout_s=10)
    config = DataConfig(source="fred", fred_api_root=server.root_url)

    summary = refresh_macro(manifest, workspace, source, CPI, config)

    assert summary.status is RefreshStatus.NEW_ROWS, summary.reason
    _, stored = load_latest(manifest, fred_artifact_name(CPI))
    september = stored.loc["2013-09-01"]
    assert september[REALTIME_START] == pd.Timestamp("2013-10-30")
    assert september[CPI] == pytest.approx(revised.loc["2013-09-01"] + FIRST_RELEASE_OFFSET)
    assert stored.loc["2012-05-01", REALTIME_START] == pd.Timestamp(FIRST_VINTAGE)

    mom = cpi_mom(stored, spy_days)
    first = stored[CPI]
    september_mom = first.loc["2013-09-01"] / first.loc["2013-08-01"] * 100 - 100
    august_mom = first.loc["2013-08-01"] / first.loc["2013-07-01"] * 100 - 100
    assert mom.loc["2013-10-29"] == pytest.approx(august_mom)  # fixed lag: 16 Oct already
    assert mom.loc["2013-10-30"] == pytest.approx(september_mom)
    assert (mom.loc[:"2013-10-29"].round(9) != round(september_mom, 9)).all()

    again = refresh_macro(manifest, workspace, source, CPI, config)
    assert again.status is RefreshStatus.UNCHANGED, again.reason


@pytest.fixture()
def spy_days(shared_data_dir: Path) -> pd.DatetimeIndex:
    bars = CsvMirrorSource(shared_data_dir).fetch_bars("SPY", None, None)
    return pd.DatetimeIndex(bars.loc["2012-01-01":"2014-06-30"].index)
