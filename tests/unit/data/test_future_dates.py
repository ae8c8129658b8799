"""Rows from the future are refused by a rule of their own, and a history whose newest rows
the source withdrew (a stored 2099 observation, since corrected) is repaired by --full."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from finscale.config import load_config
from finscale.data.config import DataConfig, ValidationConfig
from finscale.data.refresh import (
    RefreshStatus,
    fred_artifact_name,
    market_artifact_name,
    refresh_macro,
    refresh_market,
)
from finscale.data.sources.csv_mirror import CsvMirrorSource
from finscale.data.validation import exchange_sessions, validate_macro_frame, validate_market_frame
from finscale.manifest.artifacts import load_latest
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace
from tests.support.raw_workspace import store_raw_fred, store_raw_market

assert load_config  # finscale.config first: avoids the config <-> data.config import cycle

SERIES = "DGS10"
MACRO_BODY = "2023-12-28,3.79\n2023-12-29,3.88\n2024-01-02,3.95\n"
TICKER = "SPY"
LAST_SPY = "2024-01-24"  # a Wednesday; the mirror's SPY ends here
RULE_FUTURE = "future_dates"


def at(stamp: str) -> datetime:
    """A fixed clock reading (UTC)."""
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC)


def write_fred(mirror: Path, body: str) -> None:
    (mirror / "fred").mkdir(parents=True, exist_ok=True)
    (mirror / "fred" / f"{SERIES}.csv").write_text(f"date,{SERIES}\n{body}")


@pytest.fixture()
def spy_tail(shared_data_dir: Path) -> pd.DataFrame:
    return CsvMirrorSource(shared_data_dir).fetch_bars(TICKER, None, None).iloc[-60:]


def test_a_2099_observation_is_refused_by_its_own_rule(
    tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    write_fred(tmp_path, MACRO_BODY + "2099-01-05,4.10\n")

    summary = refresh_macro(manifest, workspace, CsvMirrorSource(tmp_path), SERIES, DataConfig())

    assert summary.status is RefreshStatus.FAILED
    assert f"{SERIES}: rule {RULE_FUTURE}: 1 row(s): 2099-01-05" in summary.reason
    assert manifest.latest(fred_artifact_name(SERIES)) is None


@pytest.mark.parametrize(
    ("now", "future"),
    [
        ("2024-01-02T12:00:00", []),              # today's observation is fine
        ("2024-01-01T12:00:00", ["2024-01-02"]),  # tomorrow's is not
        ("2024-01-02T03:00:00", ["2024-01-02"]),  # 03:00 UTC is still Jan 1 in New York
    ],
)
def test_macro_today_is_new_york_today(now: str, future: list[str]) -> None:
    index = pd.DatetimeIndex(["2023-12-29", "2024-01-02"], name="date")
    series = pd.DataFrame({SERIES: [3.88, 3.95]}, index=index)

    report = validate_macro_frame(series, SERIES, clock=lambda: at(now))

    found = [v for v in report.violations if v.rule == RULE_FUTURE]
    assert [d.isoformat() for v in found for d in v.dates] == future


@pytest.mark.parametrize(
    ("now", "future"),
    [
        (f"{LAST_SPY}T21:00:00", []),                           # after the close: all valid
        ("2024-01-24T04:00:00", [LAST_SPY]),                    # still Jan 23 in New York
        ("2024-01-20T18:00:00", ["2024-01-22", "2024-01-23", LAST_SPY]),  # Saturday
    ],
)
def test_bars_after_the_current_session_are_refused(
    now: str, future: list[str], spy_tail: pd.DataFrame
) -> None:
    report = validate_market_frame(spy_tail, TICKER, ValidationConfig(), clock=lambda: at(now))

    assert [v.rule for v in report.violations] == ([RULE_FUTURE] if future else [])
    assert [d.isoformat() for v in report.violations for d in v.dates] == future


def test_next_sessions_are_refused_on_the_real_clock() -> None:
    """Bars for the sessions after today's: the calendar knows them, the market does not yet."""
    today = pd.Timestamp(datetime.now(UTC).date())
    sessions = exchange_sessions("XNYS", today - pd.Timedelta(days=40),
                                 today + pd.Timedelta(days=20))
    index = pd.DatetimeIndex(sessions.tz_localize(None), name="Date")
    bars = pd.DataFrame({c: 100.0 for c in ("Open", "High", "Low", "Close", "Adj Close")} |
                        {"Volume": 1.0}, index=index)

    report = validate_market_frame(bars, TICKER, ValidationConfig())

    ahead = index[index > today]  # plus today's, while New York is still on yesterday
    assert report.rules == (RULE_FUTURE,) and len(ahead) >= 5
    assert report.violations[0].count in (len(ahead), len(ahead) + 1)


def test_a_2099_bar_is_named_as_future_not_as_session_gaps(spy_tail: pd.DataFrame) -> None:
    late = spy_tail.iloc[[-1]].set_axis(pd.DatetimeIndex(["2099-01-05"], name="Date"))

    report = validate_market_frame(pd.concat([spy_tail, late]), TICKER, ValidationConfig())

    assert report.rules == (RULE_FUTURE,) and "2099-01-05" in report.describe()


def test_withdrawn_newest_rows_refused_incrementally_and_restated_by_full(
    tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    """A series stored with a 2099 row (as an earlier version of the refresh allowed): once
    the source drops it, an incremental refresh refuses naming --full, and --full repairs."""
    stored = pd.DataFrame({SERIES: [3.79, 3.88, 3.95, 4.10]}, index=pd.DatetimeIndex(
        ["2023-12-28", "2023-12-29", "2024-01-02", "2099-01-05"], name="date"))
    store_raw_fred(manifest, workspace, SERIES, stored)
    write_fred(tmp_path, MACRO_BODY)
    source, name = CsvMirrorSource(tmp_path), fred_artifact_name(SERIES)

    nightly = refresh_macro(manifest, workspace, source, SERIES, DataConfig())
    assert nightly.status is RefreshStatus.FAILED
    assert "withdrew" in nightly.reason and "2099-01-05" in nightly.reason
    assert "--full" in nightly.reason and len(manifest.history(name)) == 1

    full = refresh_macro(manifest, workspace, source, SERIES, DataConfig(), full=True)
    assert full.status is RefreshStatus.RESTATED and "withdrew" in full.reason
    assert full.rows == 3 and full.rows_added == 0 and full.version == 2
    record, frame = load_latest(manifest, name)
    assert record.last_date.isoformat() == "2024-01-02" and len(frame) == 3

    again = refresh_macro(manifest, workspace, source, SERIES, DataConfig())
    assert again.status is RefreshStatus.UNCHANGED


def test_full_repairs_a_market_series_holding_a_future_bar(
    spy_tail: pd.DataFrame, tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    late = spy_tail.iloc[[-1]].set_axis(pd.DatetimeIndex(["2027-01-04"], name="Date"))
    store_raw_market(manifest, workspace, TICKER, pd.concat([spy_tail, late]))
    (tmp_path / "market").mkdir()
    spy_tail.to_csv(tmp_path / "market" / f"{TICKER}.csv", float_format="%.6f")

    summary = refresh_market(manifest, workspace, CsvMirrorSource(tmp_path), TICKER,
                             DataConfig(), full=True)

    assert summary.status is RefreshStatus.RESTATED and "2027-01-04" in summary.reason
    record = manifest.latest(market_artifact_name(TICKER))
    assert record is not None and record.last_date.isoformat() == LAST_SPY
