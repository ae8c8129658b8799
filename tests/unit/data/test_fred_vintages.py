"""Macro series with vintages: the csv mirror's ``date,realtime_start,<ID>`` layout, the
validation of release days, and a refresh that stores and re-checks them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finscale.config import load_config
from finscale.data.config import DataConfig
from finscale.data.refresh import RefreshStatus, fred_artifact_name, refresh_macro
from finscale.data.sources.base import MACRO_INDEX, REALTIME_START, PermanentSourceError
from finscale.data.sources.csv_mirror import CsvMirrorSource
from finscale.data.sources.fred import FRED_MAX_ROWS, first_release_frame
from finscale.data.validation import validate_macro_frame
from finscale.manifest.artifacts import load_latest
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

assert load_config  # finscale.config first: avoids the config <-> data.config import cycle

CPI = "CPIAUCSL"
# Aug and Sep 2013 CPI, each first published and later revised; September published late
# (30 Oct, the 2013 shutdown); a "." vintage is no publication; rows need not be sorted.
VINTAGES = (
    "date,realtime_start,CPIAUCSL\n"
    "2013-09-01,2014-02-21,234.149\n"
    "2013-08-01,2013-09-17,233.877\n"
    "2013-09-01,2013-10-30,234.072\n"
    "2013-08-01,2014-02-21,233.806\n"
    "2013-10-01,2013-11-19,.\n"
    "2013-10-01,2013-11-20,234.594\n"
)
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def mirror_with(tmp_path: Path, body: str) -> CsvMirrorSource:
    (tmp_path / "fred").mkdir(parents=True, exist_ok=True)
    (tmp_path / "fred" / f"{CPI}.csv").write_text(body)
    return CsvMirrorSource(tmp_path)


def test_vintage_file_serves_first_releases_with_their_days(tmp_path: Path) -> None:
    frame = mirror_with(tmp_path, VINTAGES).fetch_series(CPI, None, None)

    assert frame.index.name == MACRO_INDEX and list(frame.columns) == [CPI, REALTIME_START]
    assert list(frame.index.strftime("%Y-%m-%d")) == ["2013-08-01", "2013-09-01", "2013-10-01"]
    np.testing.assert_array_equal(frame[CPI].to_numpy(), [233.877, 234.072, 234.594])
    assert list(frame[REALTIME_START].dt.strftime("%Y-%m-%d")) == [
        "2013-09-17", "2013-10-30", "2013-11-20"]
    assert validate_macro_frame(frame, CPI, clock=lambda: NOW).ok


def test_bad_release_day_in_the_mirror_names_row_and_column(tmp_path: Path) -> None:
    source = mirror_with(tmp_path, VINTAGES + "2013-11-01,2013-12-xx,235.0\n")
    with pytest.raises(PermanentSourceError, match=r"column 'realtime_start'.*row 8: '2013-12-xx'"):
        source.fetch_series(CPI, None, None)


def test_other_layouts_are_refused_naming_both_accepted(tmp_path: Path) -> None:
    source = mirror_with(tmp_path, "date,vintage,CPIAUCSL\n2013-08-01,2013-09-17,233.877\n")
    with pytest.raises(PermanentSourceError, match=r"expected \['date', 'CPIAUCSL'\] or "
                                                   r"\['date', 'realtime_start', 'CPIAUCSL'\]"):
        source.fetch_series(CPI, None, None)


@pytest.mark.parametrize(("release", "what"), [
    ("2013-08-31", "before the observation"),  # published before the month it describes
    ("2027-01-05", "after today"),
    (None, "missing"),
])
def test_release_days_are_validated(tmp_path: Path, release: str | None, what: str) -> None:
    frame = mirror_with(tmp_path, VINTAGES).fetch_series(CPI, None, None)
    frame.loc["2013-09-01", REALTIME_START] = pd.NaT if release is None else pd.Timestamp(release)

    report = validate_macro_frame(frame, CPI, clock=lambda: NOW)

    assert report.rules == ("release_dates",), report.describe()
    assert "1 row(s): 2013-09-01" in report.describe() and what in report.describe()


def test_release_days_of_the_wrong_type_are_refused(tmp_path: Path) -> None:
    frame = mirror_with(tmp_path, VINTAGES).fetch_series(CPI, None, None)
    frame[REALTIME_START] = frame[REALTIME_START].dt.strftime("%Y-%m-%d")
    report = validate_macro_frame(frame, CPI, clock=lambda: NOW)
    assert report.rules == ("dtypes",)
    assert "realtime_start: expected datetime64" in report.describe()


@pytest.fixture()
def manifest(workspace: Workspace) -> Iterator[Manifest]:
    manifest = Manifest(workspace.manifest_url, workspace.home)
    yield manifest
    manifest.close()


def test_refresh_stores_vintages_and_rechecks_their_release_days(
    tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    """Stored with their release days; an unchanged source is unchanged; a release day that
    moved (same value) is a restatement; a new month is appended."""
    config = DataConfig(overlap_days=2)

    def refresh(body: str) -> RefreshStatus:
        source = mirror_with(tmp_path, body)
        summary = refresh_macro(manifest, workspace, source, CPI, config, clock=lambda: NOW)
        assert summary.status is not RefreshStatus.FAILED, summary.reason
        return summary.status

    assert refresh(VINTAGES) is RefreshStatus.NEW_ROWS
    _, stored = load_latest(manifest, fred_artifact_name(CPI))
    assert list(stored.columns) == [CPI, REALTIME_START]
    assert stored.loc["2013-09-01", REALTIME_START] == pd.Timestamp("2013-10-30")
    # the fingerprint shortcut is bypassed by rewriting the same rows in another order
    reordered = VINTAGES.splitlines()
    assert refresh("\n".join([reordered[0], *reversed(reordered[1:])]) + "\n") is (
        RefreshStatus.UNCHANGED)
    moved = VINTAGES.replace("2013-10-30", "2013-10-31")
    assert refresh(moved) is RefreshStatus.RESTATED
    assert refresh(moved + "2013-11-01,2013-12-18,234.9\n") is RefreshStatus.NEW_ROWS
    _, stored = load_latest(manifest, fred_artifact_name(CPI))
    assert stored.loc["2013-09-01", REALTIME_START] == pd.Timestamp("2013-10-31")
    assert stored.loc["2013-11-01", REALTIME_START] == pd.Timestamp("2013-12-18")


def test_a_mirror_that_gains_vintages_is_refetched_in_full(
    tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    plain = "date,CPIAUCSL\n2013-08-01,233.877\n2013-09-01,234.072\n2013-10-01,234.594\n"
    first = refresh_macro(manifest, workspace, mirror_with(tmp_path, plain), CPI, DataConfig(),
                          clock=lambda: NOW)
    assert first.status is RefreshStatus.NEW_ROWS
    second = refresh_macro(manifest, workspace, mirror_with(tmp_path, VINTAGES), CPI,
                           DataConfig(), clock=lambda: NOW)
    assert second.status is RefreshStatus.RESTATED and "columns differ" in second.reason
    _, stored = load_latest(manifest, fred_artifact_name(CPI))
    assert list(stored.columns) == [CPI, REALTIME_START]


def test_a_fred_reply_at_the_row_limit_is_refused_as_possibly_cut() -> None:
    """FRED answers at most 100000 rows per request and fredapi does not page."""
    days = pd.date_range("1700-01-01", periods=FRED_MAX_ROWS, freq="D")
    releases = pd.DataFrame({"date": days, REALTIME_START: days, "value": 1.0})
    with pytest.raises(PermanentSourceError, match=r"100000 vintage rows.*may be cut"):
        first_release_frame(releases, CPI, f"fred: {CPI}")
    kept = first_release_frame(releases.iloc[1:], CPI, f"fred: {CPI}")
    assert len(kept) == FRED_MAX_ROWS - 1
