"""`finscale data refresh|status` and `finscale manifest list|verify` as a user runs them:
a fresh FINSCALE_HOME filled from the real mirror, then a second run that changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ALL_SERIES = [
    *(f"raw/market/{t}" for t in ("SPY", "DIA", "QQQ", "VIX")),
    *(f"raw/fred/{s}" for s in ("DGS10", "DGS2", "T10Y2Y", "VIXCLS", "FEDFUNDS", "UNRATE",
                                "CPIAUCSL", "BAMLH0A0HYM2", "DTWEXBGS")),
]


def finscale(home: Path, *args: str, mirror_env: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FINSCALE_") and k != "FRED_API_KEY"}
    env["FINSCALE_HOME"] = str(home)
    if mirror_env:
        env["FINSCALE_DATA_MIRROR"] = mirror_env
    return subprocess.run(
        [sys.executable, "-m", "finscale.cli.main", *args], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )


def _status_of(output: str) -> dict[str, str]:
    rows = [line.split() for line in output.splitlines() if line.startswith("raw/")]
    return {row[0]: row[1] for row in rows}


def test_refresh_status_verify_and_unchanged_rerun(tmp_path: Path, shared_data_dir: Path) -> None:
    home = tmp_path / "home"
    first = finscale(home, "data", "refresh", "--source", "csv", "--mirror", str(shared_data_dir))
    assert first.returncode == 0, first.stderr
    assert _status_of(first.stdout) == dict.fromkeys(ALL_SERIES, "new_rows")
    assert "[13/13] refreshing raw/fred/DTWEXBGS" in first.stderr  # progress lines

    status = finscale(home, "data", "status")
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()
            if line.startswith("raw/")}
    assert sorted(rows) == sorted(ALL_SERIES)
    assert rows["raw/market/SPY"][1:4] == ["7802", "1993-01-29", "2024-01-24"]
    assert len(rows["raw/market/SPY"][4]) == 32  # the MD5

    verify = finscale(home, "manifest", "verify")
    assert verify.returncode == 0 and "13 ok, 0 failed" in verify.stdout

    # the demo's exact second command line: mirror from the environment this time
    second = finscale(home, "data", "refresh", "--source", "csv",
                      mirror_env=str(shared_data_dir))
    assert second.returncode == 0, second.stderr
    assert _status_of(second.stdout) == dict.fromkeys(ALL_SERIES, "unchanged")

    # status shows the unchanged check, though it made no new version
    after = finscale(home, "data", "status")
    rows_after = {line.split()[0]: line.split() for line in after.stdout.splitlines()
                  if line.startswith("raw/")}
    for name in ALL_SERIES:
        version, stored_at, checked_at = rows_after[name][5], rows_after[name][6:8], \
            rows_after[name][8:10]
        assert version == "1" and rows_after[name][10:] == ["unchanged", "(csv)"], name
        assert checked_at >= stored_at, name
    assert "last refresh" in after.stdout

    listing = finscale(home, "manifest", "list", "--kind", "raw_market")
    assert listing.returncode == 0
    assert sorted(line.split()[1] for line in listing.stdout.splitlines()
                  if line[:1].isdigit()) == sorted(ALL_SERIES[:4])


def test_verify_names_a_tampered_file(tmp_path: Path, shared_data_dir: Path) -> None:
    home = tmp_path / "home"
    refreshed = finscale(home, "data", "refresh", "--mirror", str(shared_data_dir),
                         "--tickers", "DIA", "--series")
    assert refreshed.returncode == 0, refreshed.stderr
    (stored,) = (home / "data" / "raw" / "market").glob("*.parquet")
    stored.write_bytes(stored.read_bytes() + b"x")

    verify = finscale(home, "manifest", "verify")

    assert verify.returncode == 1
    assert "raw/market/DIA" in verify.stderr and stored.name in verify.stderr


def test_missing_mirror_fails_fast_naming_the_option(tmp_path: Path) -> None:
    result = finscale(tmp_path / "home", "data", "refresh", "--source", "csv")
    assert result.returncode == 2 and "--mirror" in result.stderr


def test_source_names_pick_which_half_is_refreshed(tmp_path: Path, shared_data_dir: Path) -> None:
    home = tmp_path / "home"
    bad = finscale(home, "data", "refresh", "--source", "yahoo", "--series", "DGS10")
    assert bad.returncode == 2 and "serves no FRED series" in bad.stderr
    bad = finscale(home, "data", "refresh", "--source", "fred", "--tickers", "SPY")
    assert bad.returncode == 2 and "serves no market tickers" in bad.stderr

    # no FRED_API_KEY: one failure naming the variable and --mirror, not one per series
    no_key = finscale(home, "data", "refresh", "--source", "fred")
    assert no_key.returncode == 2
    assert "FRED_API_KEY" in no_key.stderr and "--mirror" in no_key.stderr
    assert no_key.stderr.count("FRED_API_KEY") == 1

    help_text = finscale(home, "data", "refresh", "--help").stdout
    assert "online" in help_text and "overlap_days" in help_text and "--full" in help_text
