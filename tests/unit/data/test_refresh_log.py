"""The refresh log on SQLite and PostgreSQL: every check kept, the newest one per series read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finscale.data.refresh_log import REASON_MAX_CHARS, RefreshLog

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def check_log(request: pytest.FixtureRequest, tmp_path: Path) -> RefreshLog:
    url = f"sqlite:///{tmp_path / 'manifest.db'}" if request.param == "sqlite" else PG_SERVER
    log = RefreshLog(url)
    request.addfinalizer(log.close)
    return log


def test_last_check_per_series_and_full_history(check_log: RefreshLog) -> None:
    spy, dgs = f"raw/market/SPY-{uuid.uuid4().hex}", f"raw/fred/DGS10-{uuid.uuid4().hex}"
    night = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    check_log.record(name=spy, source="yahoo", status="new_rows", rows_added=1, version=3,
                     reason="appended", checked_at=night)
    check_log.record(name=dgs, source="fred", status="failed", rows_added=0, version=None,
                     reason="x" * (REASON_MAX_CHARS + 50), checked_at=night)
    check_log.record(name=spy, source="yahoo", status="unchanged", rows_added=0, version=3,
                     reason="no rows after 2026-01-05", checked_at=night + timedelta(days=1))

    last = check_log.last_checks()
    assert last[spy].status == "unchanged" and last[spy].version == 3
    assert last[spy].checked_at.replace(tzinfo=UTC) == night + timedelta(days=1)
    assert last[dgs].status == "failed" and len(last[dgs].reason) == REASON_MAX_CHARS
    assert [c.status for c in check_log.history(spy)] == ["new_rows", "unchanged"]
