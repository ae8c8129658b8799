"""Each validation rule, on real bars broken in a CSV mirror: the refresh names the rule and
the rows, and the previously stored version stays byte-identical."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finscale.config import load_config
from finscale.data.config import DataConfig, ValidationConfig
from finscale.data.refresh import RefreshStatus, market_artifact_name, refresh_macro, refresh_market
from finscale.data.sources.csv_mirror import CsvMirrorSource, read_market_csv
from finscale.data.validation import (
    RULE_COLUMNS,
    RULE_DTYPES,
    DataValidationError,
    ensure_valid_market,
    validate_macro_frame,
    validate_market_frame,
)
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

assert load_config  # finscale.config first: avoids the config <-> data.config import cycle

TICKER = "SPY"
GOOD_ROWS = 60  # real SPY sessions 2023-10-31 .. 2024-01-24
STORED_ROWS = GOOD_ROWS - 8
HOLIDAY = "2024-01-15"
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"
Lines = list[list[str]]


@pytest.fixture()
def real_rows(shared_data_dir: Path) -> Lines:
    lines = (shared_data_dir / "market" / f"{TICKER}.csv").read_text().splitlines()
    assert lines[0] == HEADER
    return [line.split(",") for line in lines[-GOOD_ROWS:]]


def write_market(mirror: Path, rows: Lines, ticker: str = TICKER) -> None:
    (mirror / "market").mkdir(parents=True, exist_ok=True)
    body = "\n".join([HEADER, *(",".join(r) for r in rows)]) + "\n"
    (mirror / "market" / f"{ticker}.csv").write_text(body)


def set_cell(rows: Lines, i: int, column: str, value: str) -> Lines:
    out = [list(r) for r in rows]
    out[i][HEADER.split(",").index(column)] = value
    return out


# each breaker corrupts rows in the part not yet stored; (rule, breaker, date(s) to be named)
def _swap(rows: Lines) -> Lines:
    out = [list(r) for r in rows]
    out[-3], out[-2] = out[-2], out[-3]
    return out


def _insert_holiday(rows: Lines) -> Lines:
    """Add Martin Luther King Day 2024 (NYSE closed) with the next session's prices."""
    at = next(i for i, r in enumerate(rows) if r[0] == "2024-01-16")
    return [*rows[:at], [HOLIDAY, *rows[at][1:]], *rows[at:]]

BREAKERS: dict[str, tuple[Callable[[Lines], Lines], int]] = {
    "sorted_dates": (_swap, -3),
    "unique_dates": (lambda r: [*r[:-2], r[-3], *r[-2:]], -3),
    "nan_values": (lambda r: set_cell(r, -4, "Close", "null"), -4),
    "positive_prices": (lambda r: set_cell(r, -4, "Open", "-1.5"), -4),
    "high_ge_open_close": (lambda r: set_cell(r, -5, "High", "100.0"), -5),
    "low_le_open_close": (lambda r: set_cell(r, -5, "Low", "999.0"), -5),
    "volume_non_negative": (lambda r: set_cell(r, -6, "Volume", "-10"), -6),
    "session_gaps": (lambda r: [*r[:-4], *r[-3:]], -4),
    "non_session_dates": (_insert_holiday, None),
}



def _seed(workspace: Workspace, mirror: Path, rows: Lines) -> tuple[Manifest, CsvMirrorSource]:
    write_market(mirror, rows[:STORED_ROWS])
    manifest = Manifest(workspace.manifest_url, workspace.home)
    source = CsvMirrorSource(mirror)
    first = refresh_market(manifest, workspace, source, TICKER, DataConfig())
    assert first.status is RefreshStatus.NEW_ROWS and first.rows == STORED_ROWS
    return manifest, source


@pytest.mark.parametrize("rule", sorted(BREAKERS))
def test_broken_csv_names_rule_and_rows_and_keeps_previous_version(
    rule: str, real_rows: Lines, workspace: Workspace, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    manifest, source = _seed(workspace, mirror, real_rows)
    before = manifest.latest(market_artifact_name(TICKER))
    assert before is not None
    stored_bytes = manifest.absolute(before).read_bytes()

    breaker, named_row = BREAKERS[rule]
    write_market(mirror, breaker(real_rows))
    summary = refresh_market(manifest, workspace, source, TICKER, DataConfig())

    assert summary.status is RefreshStatus.FAILED
    assert f"rule {rule}" in summary.reason and TICKER in summary.reason
    expected_date = HOLIDAY if named_row is None else real_rows[named_row][0]
    assert expected_date in summary.reason
    after = manifest.latest(market_artifact_name(TICKER))
    assert after == before and len(manifest.history(before.name)) == 1
    assert manifest.absolute(before).read_bytes() == stored_bytes
    assert all(r.ok for r in manifest.verify())
    manifest.close()


def test_full_refetch_of_broken_history_also_rejected(
    real_rows: Lines, workspace: Workspace, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    manifest, source = _seed(workspace, mirror, real_rows)
    before = manifest.latest(market_artifact_name(TICKER))
    write_market(mirror, set_cell(real_rows, 3, "High", "1.0"))  # inside the stored range

    summary = refresh_market(manifest, workspace, source, TICKER, DataConfig(), full=True)

    assert summary.status is RefreshStatus.FAILED
    assert "rule high_ge_open_close" in summary.reason and real_rows[3][0] in summary.reason
    assert manifest.latest(market_artifact_name(TICKER)) == before
    manifest.close()


def test_missing_column_in_csv_is_named(
    real_rows: Lines, workspace: Workspace, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    manifest, source = _seed(workspace, mirror, real_rows)
    text = (mirror / "market" / f"{TICKER}.csv").read_text()
    lines = [",".join(line.split(",")[:5] + line.split(",")[6:]) for line in text.splitlines()]
    (mirror / "market" / f"{TICKER}.csv").write_text("\n".join(lines) + "\n")

    summary = refresh_market(manifest, workspace, source, TICKER, DataConfig())

    assert summary.status is RefreshStatus.FAILED and "Adj Close" in summary.reason
    assert len(manifest.history(market_artifact_name(TICKER))) == 1
    manifest.close()


def test_layout_rules_on_frames(real_rows: Lines, tmp_path: Path) -> None:
    write_market(tmp_path, real_rows)
    frame = read_market_csv(tmp_path / "market" / f"{TICKER}.csv")
    config = ValidationConfig()
    assert validate_market_frame(frame, TICKER, config).ok

    no_volume = validate_market_frame(frame.drop(columns=["Volume"]), TICKER, config)
    assert no_volume.rules == (RULE_COLUMNS,) and "Volume" in no_volume.describe()

    as_text = frame.assign(Close=frame["Close"].astype(str))
    assert validate_market_frame(as_text, TICKER, config).rules == (RULE_DTYPES,)

    with pytest.raises(DataValidationError, match=r"SPY: rule dtypes.*Close"):
        ensure_valid_market(as_text, TICKER, config)


def test_many_offending_rows_show_first_few_and_count(real_rows: Lines, tmp_path: Path) -> None:
    write_market(tmp_path, real_rows)
    frame = read_market_csv(tmp_path / "market" / f"{TICKER}.csv")
    frame.loc[frame.index[10:30], "Low"] = 10_000.0

    report = validate_market_frame(frame, TICKER, ValidationConfig())

    (violation,) = report.violations
    assert violation.rule == "low_le_open_close" and violation.count == 20
    assert len(violation.dates) == 5 and violation.dates[0] == frame.index[10].date()
    assert "(+15 more)" in report.describe()


def test_session_gap_lists_missing_dates_and_allowance(real_rows: Lines, tmp_path: Path) -> None:
    write_market(tmp_path, [*real_rows[:20], *real_rows[23:]])
    frame = read_market_csv(tmp_path / "market" / f"{TICKER}.csv")
    missing = [real_rows[i][0] for i in (20, 21, 22)]

    strict = validate_market_frame(frame, TICKER, ValidationConfig())
    assert strict.rules == ("session_gaps",)
    assert [d.isoformat() for d in strict.violations[0].dates] == missing

    lenient = ValidationConfig(max_missing_sessions=3)
    assert validate_market_frame(frame, TICKER, lenient).ok


def test_nan_policy_drop_rows(real_rows: Lines, tmp_path: Path) -> None:
    write_market(tmp_path, set_cell(real_rows, 30, "Open", "null"))
    frame = read_market_csv(tmp_path / "market" / f"{TICKER}.csv")

    with pytest.raises(DataValidationError, match="nan_values"):
        ensure_valid_market(frame, TICKER, ValidationConfig())
    dropping = ValidationConfig(nan_policy="drop_rows", max_missing_sessions=1)
    cleaned = ensure_valid_market(frame, TICKER, dropping)
    assert len(cleaned) == GOOD_ROWS - 1 and not cleaned.isna().any().any()


def test_vix_zero_volume_is_valid(shared_data_dir: Path) -> None:
    frame = CsvMirrorSource(shared_data_dir).fetch_bars("VIX", date(2020, 1, 1), None)
    assert (frame["Volume"] == 0).all()
    assert validate_market_frame(frame, "VIX", ValidationConfig()).ok


@pytest.mark.parametrize(
    ("rule", "body"),
    [
        ("sorted_dates", "2024-01-04,1.0\n2024-01-03,2.0\n2024-01-05,3.0\n"),
        ("unique_dates", "2024-01-02,1.0\n2024-01-03,2.0\n2024-01-03,2.5\n"),
        ("finite_values", "2024-01-02,1.0\n2024-01-03,inf\n2024-01-04,3.0\n"),
    ],
)
def test_macro_rules(rule: str, body: str, workspace: Workspace, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "fred").mkdir(parents=True)
    path = mirror / "fred" / "DGS10.csv"
    path.write_text("date,DGS10\n2023-12-28,4.0\n2023-12-29,4.1\n")
    manifest = Manifest(workspace.manifest_url, workspace.home)
    source = CsvMirrorSource(mirror)
    assert refresh_macro(manifest, workspace, source, "DGS10", DataConfig()).rows == 2
    stored = manifest.latest("raw/fred/DGS10")
    assert stored is not None
    stored_bytes = manifest.absolute(stored).read_bytes()

    path.write_text("date,DGS10\n2023-12-28,4.0\n2023-12-29,4.1\n" + body)
    summary = refresh_macro(manifest, workspace, source, "DGS10", DataConfig())

    assert summary.status is RefreshStatus.FAILED
    assert f"rule {rule}" in summary.reason and "DGS10" in summary.reason
    assert "2024-01-03" in summary.reason
    assert manifest.latest("raw/fred/DGS10") == stored
    assert manifest.absolute(stored).read_bytes() == stored_bytes
    manifest.close()


def test_macro_frame_layout() -> None:
    index = pd.DatetimeIndex(["2024-01-02", "2024-01-03"], name="date")
    ok = pd.DataFrame({"DGS2": np.array([4.0, 4.1])}, index=index)
    assert validate_macro_frame(ok, "DGS2").ok
    assert validate_macro_frame(ok.rename(columns={"DGS2": "X"}), "DGS2").rules == (RULE_COLUMNS,)
