"""Incremental refresh on real bars: append exactly the new rows, detect restated history,
write nothing when unchanged, and keep going when one series fails."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from finscale.config import load_config
from finscale.data.config import DataConfig, RetryConfig
from finscale.data.refresh import (
    FINGERPRINT_META_KEY,
    RefreshStatus,
    market_artifact_name,
    refresh_market,
    refresh_universe,
    resolve_universe,
)
from finscale.data.refresh_log import RefreshLog
from finscale.data.sources.base import (
    PermanentSourceError,
    SourceUnreachableError,
    TransientSourceError,
)
from finscale.data.sources.csv_mirror import CsvMirrorSource
from finscale.manifest.artifacts import load_latest
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

assert load_config  # finscale.config first: avoids the config <-> data.config import cycle

FAST_RETRY = RetryConfig(attempts=3, base_delay_s=0.01, max_delay_s=0.01, jitter=0.0)
CONFIG = DataConfig(retry=FAST_RETRY)


class PlainCsvSource:
    """The csv mirror without its fingerprint: every refresh must fetch and compare."""

    name = "csv"

    def __init__(self, mirror: Path, transient_failures: int = 0,
                 unreachable: bool = False) -> None:
        self.inner = CsvMirrorSource(mirror)
        self.calls: list[tuple[str, date | None]] = []
        self.transient_failures = transient_failures
        self.unreachable = unreachable

    def fetch_bars(self, ticker: str, start: date | None, end: date | None) -> pd.DataFrame:
        self.calls.append((ticker, start))
        if self.unreachable:
            raise SourceUnreachableError(f"test: {ticker}: connection refused")
        if self.transient_failures:
            self.transient_failures -= 1
            raise TransientSourceError(f"test: {ticker}: HTTP 503")
        return self.inner.fetch_bars(ticker, start, end)


@pytest.fixture()
def spy_csv(shared_data_dir: Path) -> list[str]:
    lines = (shared_data_dir / "market" / "SPY.csv").read_text().splitlines()
    return [lines[0], *lines[-400:]]


def write(mirror: Path, lines: list[str], ticker: str = "SPY") -> None:
    (mirror / "market").mkdir(parents=True, exist_ok=True)
    (mirror / "market" / f"{ticker}.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def manifest(workspace: Workspace) -> Manifest:
    return Manifest(workspace.manifest_url, workspace.home)


@pytest.mark.parametrize("fingerprinted", [True, False])
@pytest.mark.parametrize("missing", [1, 7, 25])
def test_truncated_then_complete_appends_exactly_the_missing_rows(
    fingerprinted: bool, missing: int, spy_csv: list[str], tmp_path: Path,
    workspace: Workspace, manifest: Manifest,
) -> None:
    mirror = tmp_path / "mirror"
    source = CsvMirrorSource(mirror) if fingerprinted else PlainCsvSource(mirror)
    write(mirror, spy_csv[:-missing])
    first = refresh_market(manifest, workspace, source, "SPY", CONFIG)
    assert first.status is RefreshStatus.NEW_ROWS and first.rows == 400 - missing

    write(mirror, spy_csv)
    second = refresh_market(manifest, workspace, source, "SPY", CONFIG)

    assert second.status is RefreshStatus.NEW_ROWS
    assert second.rows_added == missing and second.rows == 400 and second.version == 2
    record, stored = load_latest(manifest, market_artifact_name("SPY"))
    pd.testing.assert_frame_equal(stored, CsvMirrorSource(mirror).fetch_bars("SPY", None, None),
                                  check_index_type=False)
    assert record.meta["full_fetch"] is False
    assert record.meta["fetch_start"] == spy_csv[-missing - CONFIG.overlap_days].split(",")[0]


def test_restated_adj_close_triggers_full_refetch(
    spy_csv: list[str], tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    mirror = tmp_path / "mirror"
    source = PlainCsvSource(mirror)
    write(mirror, spy_csv[:-3])
    refresh_market(manifest, workspace, source, "SPY", CONFIG)

    # a dividend: Yahoo scales every earlier Adj Close by the same factor
    restated = [spy_csv[0]]
    for line in spy_csv[1:-1]:
        cells = line.split(",")
        cells[5] = f"{float(cells[5]) * 0.99:.6f}"
        restated.append(",".join(cells))
    restated.append(spy_csv[-1])
    write(mirror, restated)
    source.calls.clear()
    summary = refresh_market(manifest, workspace, source, "SPY", CONFIG)

    assert summary.status is RefreshStatus.RESTATED and "Adj Close restated" in summary.reason
    assert summary.rows_added == 3 and summary.rows == 400
    assert [start for _, start in source.calls] == [
        date.fromisoformat(spy_csv[-3 - CONFIG.overlap_days].split(",")[0]), CONFIG.start,
    ]
    record, stored = load_latest(manifest, market_artifact_name("SPY"))
    assert record.meta["full_fetch"] is True and record.meta["restated"] == summary.reason
    assert stored["Adj Close"].iloc[0] == pytest.approx(float(restated[1].split(",")[5]))


@pytest.mark.parametrize("fingerprinted", [True, False])
def test_unchanged_source_makes_no_new_version_and_writes_nothing(
    fingerprinted: bool, spy_csv: list[str], tmp_path: Path, workspace: Workspace,
    manifest: Manifest,
) -> None:
    mirror = tmp_path / "mirror"
    source = CsvMirrorSource(mirror) if fingerprinted else PlainCsvSource(mirror)
    write(mirror, spy_csv)
    first = refresh_market(manifest, workspace, source, "SPY", CONFIG)
    files = {p: p.stat().st_mtime_ns for p in workspace.raw_dir.rglob("*")}

    again = refresh_market(manifest, workspace, source, "SPY", CONFIG)
    full = refresh_market(manifest, workspace, source, "SPY", CONFIG, full=True)

    assert again.status is RefreshStatus.UNCHANGED and full.status is RefreshStatus.UNCHANGED
    assert again.rows_added == 0 and again.version == first.version == 1
    assert len(manifest.history(market_artifact_name("SPY"))) == 1
    assert {p: p.stat().st_mtime_ns for p in workspace.raw_dir.rglob("*")} == files
    record = manifest.latest(market_artifact_name("SPY"))
    assert record is not None
    assert (record.meta[FINGERPRINT_META_KEY] is not None) == fingerprinted


def test_fingerprint_shortcut_still_notices_a_tampered_store(
    spy_csv: list[str], tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    mirror = tmp_path / "mirror"
    write(mirror, spy_csv)
    refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", CONFIG)
    record = manifest.latest(market_artifact_name("SPY"))
    assert record is not None
    manifest.absolute(record).write_bytes(b"not parquet")

    summary = refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", CONFIG)

    assert summary.status is RefreshStatus.FAILED and "md5" in summary.reason


def test_history_that_shrinks_is_refused(
    spy_csv: list[str], tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    mirror = tmp_path / "mirror"
    write(mirror, spy_csv)
    refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", CONFIG)
    write(mirror, spy_csv[:-30])

    summary = refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", CONFIG)

    assert summary.status is RefreshStatus.FAILED and "shrink" in summary.reason
    assert len(manifest.history(market_artifact_name("SPY"))) == 1


def test_transient_fault_is_retried_with_backoff(
    spy_csv: list[str], tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    mirror = tmp_path / "mirror"
    write(mirror, spy_csv)
    source = PlainCsvSource(mirror, transient_failures=2)

    summary = refresh_market(manifest, workspace, source, "SPY", CONFIG)

    assert summary.status is RefreshStatus.NEW_ROWS and len(source.calls) == 3


def test_one_failing_ticker_leaves_the_others_refreshed(
    shared_data_dir: Path, workspace: Workspace, manifest: Manifest
) -> None:
    source = CsvMirrorSource(shared_data_dir)
    summaries = refresh_universe(
        manifest, workspace, CONFIG, market_source=source, macro_source=source,
        tickers=["SPY", "NOPE", "VIX"], fred_series=["UNRATE"],
    )

    by_name = {s.name: s for s in summaries}
    assert by_name["raw/market/NOPE"].status is RefreshStatus.FAILED
    assert "NOPE" in by_name["raw/market/NOPE"].reason
    assert by_name["raw/market/SPY"].status is RefreshStatus.NEW_ROWS
    assert by_name["raw/market/VIX"].rows == 8581
    assert by_name["raw/fred/UNRATE"].status is RefreshStatus.NEW_ROWS
    assert manifest.latest("raw/market/NOPE") is None


def test_transient_exhausted_is_a_failure_but_unreachable_aborts(
    spy_csv: list[str], tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    mirror = tmp_path / "mirror"
    write(mirror, spy_csv)
    flaky = PlainCsvSource(mirror, transient_failures=99)
    (summary,) = refresh_universe(manifest, workspace, CONFIG, market_source=flaky,
                                  macro_source=None, tickers=["SPY"])
    assert summary.status is RefreshStatus.FAILED and "3 attempt" in summary.reason

    offline = PlainCsvSource(mirror, unreachable=True)
    with pytest.raises(SourceUnreachableError):
        refresh_universe(manifest, workspace, CONFIG, market_source=offline, macro_source=None,
                         tickers=["SPY", "DIA"])
    assert len(offline.calls) == 1


def test_a_deleted_store_is_never_reported_unchanged_and_full_repairs_it(
    spy_csv: list[str], tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    mirror = tmp_path / "mirror"
    write(mirror, spy_csv)
    first = refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", CONFIG)
    record = manifest.latest(market_artifact_name("SPY"))
    assert record is not None
    manifest.absolute(record).unlink()

    summary = refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", CONFIG)
    assert summary.status is RefreshStatus.FAILED
    assert "missing" in summary.reason and "--full" in summary.reason

    repaired = refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", CONFIG,
                              full=True)
    assert repaired.status is RefreshStatus.RESTATED and "MD5" in repaired.reason
    assert repaired.md5 == first.md5 and all(r.ok for r in manifest.verify())
    again = refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", CONFIG)
    assert again.status is RefreshStatus.UNCHANGED


def test_every_check_is_logged_with_its_outcome(
    spy_csv: list[str], tmp_path: Path, workspace: Workspace, manifest: Manifest
) -> None:
    mirror = tmp_path / "mirror"
    write(mirror, spy_csv)
    name = market_artifact_name("SPY")
    refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", CONFIG)
    refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", CONFIG)
    with pytest.raises(TransientSourceError):
        refresh_market(manifest, workspace, PlainCsvSource(mirror, transient_failures=99),
                       "SPY", CONFIG)

    check_log = RefreshLog(manifest.url)
    history = check_log.history(name)
    last = check_log.last_checks()[name]
    check_log.close()
    assert [c.status for c in history] == ["new_rows", "unchanged", "failed"]
    assert history[1].version == 1 and history[0].checked_at <= history[1].checked_at
    assert last == history[-1] and "HTTP 503" in last.reason
    assert len(manifest.history(name)) == 1  # checks make no versions


@pytest.mark.parametrize(
    ("source", "tickers", "series"),
    [("csv", 4, 9), ("online", 4, 9), ("yahoo", 4, 0), ("fred", 0, 9)],
)
def test_source_name_selects_the_half_of_the_universe(
    source: str, tickers: int, series: int
) -> None:
    config = DataConfig(source=source)
    chosen = resolve_universe(config, None, None)
    assert (len(chosen[0]), len(chosen[1])) == (tickers, series)
    assert resolve_universe(config, [], []) == ((), ())


def test_asking_a_source_for_the_half_it_does_not_serve_is_an_error() -> None:
    with pytest.raises(PermanentSourceError, match=r"'yahoo' serves no FRED series.*DGS10"):
        resolve_universe(DataConfig(source="yahoo"), None, ["DGS10"])
    with pytest.raises(PermanentSourceError, match=r"'fred' serves no market tickers.*SPY"):
        resolve_universe(DataConfig(source="fred"), ["SPY"], None)
