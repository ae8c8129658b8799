"""The ``data_refresh`` flow under the Prefect test harness: real mirror data, a second run
that changes nothing, a run with failed series that ends Failed (after storing the good ones),
one retry layer (the library's), the FRED key checked once up front, and the key read from a
Prefect Secret block when the environment has none."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from sqlalchemy.exc import OperationalError

from finscale.data.refresh import RefreshStatus, RefreshSummary
from finscale.data.sources.base import (
    PermanentSourceError,
    SourceUnreachableError,
    TransientSourceError,
)
from finscale.data.sources.fred import FRED_API_KEY_ENV
from finscale.manifest.store import Manifest
from finscale.runtime import CONFIG_ENV, DEFAULT_CONFIG
from finscale.workspace import Workspace
from flows.data_refresh import RefreshFailedError, data_refresh
from tasks.data import FRED_SECRET_BLOCK, retry_unclassified_only
from tests.support.fake_fred import FakeFredServer

pytestmark = pytest.mark.integration

API_KEY = "flow-test-key"
LIBRARY_ATTEMPTS = 3


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FINSCALE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    return tmp_path / "home"


def _manifest(home: Path) -> Manifest:
    return Manifest(Workspace.resolve(home).manifest_url, home)


def test_flow_refreshes_every_series_then_reports_unchanged(
    prefect_harness: None, home: Path, shared_data_dir: Path
) -> None:
    first = data_refresh(source="csv", mirror=str(shared_data_dir))

    assert all(isinstance(s, RefreshSummary) for s in first)
    assert len(first) == 13 and {s.status for s in first} == {RefreshStatus.NEW_ROWS}
    assert {s.name: s.rows for s in first}["raw/market/SPY"] == 7802

    second = data_refresh(source="csv", mirror=str(shared_data_dir))
    assert {s.status for s in second} == {RefreshStatus.UNCHANGED}
    manifest = _manifest(home)
    assert len(manifest.all_versions()) == 13 and all(r.ok for r in manifest.verify())
    manifest.close()


def _task_runs(flow_run_id: UUID) -> list[Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


@pytest.fixture()
def mirror_with_invalid_spy(shared_data_dir: Path, tmp_path: Path) -> Path:
    """A copy of the mirror whose SPY has one bar with High below Low."""
    mirror = tmp_path / "mirror"
    shutil.copytree(shared_data_dir, mirror)
    spy = mirror / "market" / "SPY.csv"
    lines = spy.read_text().splitlines()
    date, open_, high, low, *rest = lines[100].split(",")
    lines[100] = ",".join([date, open_, low, high, *rest])  # High and Low swapped
    spy.write_text("\n".join(lines) + "\n")
    return mirror


def test_a_failed_series_fails_the_run_after_the_others_are_stored(
    prefect_harness: None, home: Path, mirror_with_invalid_spy: Path
) -> None:
    state = data_refresh(tickers=["SPY", "DIA", "NOPE"], fred_series=["DGS10"], source="csv",
                         mirror=str(mirror_with_invalid_spy), return_state=True)

    assert state.is_failed()
    assert "2 of 4 series failed (raw/market/SPY, raw/market/NOPE)" in (state.message or "")
    error = state.result(raise_on_failure=False)
    assert isinstance(error, RefreshFailedError)
    by_symbol = {s.symbol: s.status for s in error.summaries}
    assert by_symbol == {"SPY": RefreshStatus.FAILED, "DIA": RefreshStatus.NEW_ROWS,
                         "NOPE": RefreshStatus.FAILED, "DGS10": RefreshStatus.NEW_ROWS}
    manifest = _manifest(home)
    assert {r.name for r in manifest.all_latest()} == {"raw/market/DIA", "raw/fred/DGS10"}
    manifest.close()


@pytest.fixture()
def fred_config(
    shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeFredServer]:
    """A fake FRED and a config pointing at it: 3 library attempts, short back-off."""
    with FakeFredServer(shared_data_dir / "fred", api_key=API_KEY) as server:
        config = tmp_path / "flow.yaml"
        config.write_text(yaml.safe_dump({
            "extends": str(DEFAULT_CONFIG.resolve()),
            "data": {"fred_api_root": server.root_url, "timeout_s": 60,
                     "retry": {"attempts": LIBRARY_ATTEMPTS, "base_delay_s": 0.05}},
        }))
        monkeypatch.setenv(CONFIG_ENV, str(config))
        monkeypatch.setenv(FRED_API_KEY_ENV, API_KEY)
        yield server


def test_a_transient_fault_is_retried_by_the_library_alone(
    prefect_harness: None, home: Path, fred_config: FakeFredServer
) -> None:
    fred_config.fail_next("500", times=100)  # every request fails: both series fail

    # source fred = FRED series only: the default tickers are not touched (offline Yahoo)
    state = data_refresh(fred_series=["UNRATE", "DGS10"], source="fred", return_state=True)

    assert state.is_failed()
    assert "2 of 2 series failed (raw/fred/UNRATE, raw/fred/DGS10)" in (state.message or "")
    requests = fred_config.observation_requests()
    for series_id in ("UNRATE", "DGS10"):
        assert sum(f"series_id={series_id}" in r for r in requests) == LIBRARY_ATTEMPTS
    runs = _task_runs(state.state_details.flow_run_id)
    assert sorted(r.name for r in runs if r.name.startswith("refresh-fred-")) == [
        "refresh-fred-DGS10", "refresh-fred-UNRATE"]
    assert {r.run_count for r in runs} == {1}  # no Prefect retry around the library's


def _without_fred_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key in the environment now, and the original restored after the test (even when
    the flow sets one from the Secret block)."""
    monkeypatch.setenv(FRED_API_KEY_ENV, "placeholder")
    monkeypatch.delenv(FRED_API_KEY_ENV)


def test_a_missing_fred_key_fails_once_before_any_series(
    prefect_harness: None, home: Path, fred_config: FakeFredServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without_fred_key(monkeypatch)

    state = data_refresh(source="fred", return_state=True)  # the config's nine series

    assert state.is_failed()
    message = state.message or ""
    assert message.count(f"${FRED_API_KEY_ENV} is not set") == 1
    assert f"Secret block {FRED_SECRET_BLOCK!r}" in message
    assert fred_config.paths_seen == []
    runs = _task_runs(state.state_details.flow_run_id)
    assert [r.name.split("-")[0] for r in runs] == ["plan_universe"]  # no series task at all


@pytest.fixture()
def fred_secret_block(prefect_harness: None) -> Iterator[None]:
    from prefect.blocks.system import Secret

    Secret(value=API_KEY).save(FRED_SECRET_BLOCK, overwrite=True)
    yield
    Secret.delete(FRED_SECRET_BLOCK)


def test_the_fred_key_comes_from_the_secret_block_when_the_env_has_none(
    fred_secret_block: None, home: Path, fred_config: FakeFredServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without_fred_key(monkeypatch)

    (summary,) = data_refresh(fred_series=["DGS10"], source="fred")

    assert summary.status is RefreshStatus.NEW_ROWS and summary.rows > 400
    assert all(f"api_key={API_KEY}" in p for p in fred_config.observation_requests())


def test_every_flow_parameter_has_a_description_for_the_ui_form() -> None:
    from prefect.utilities.callables import parameter_schema

    properties = parameter_schema(data_refresh.fn).model_dump()["properties"]
    assert set(properties) == {"tickers", "fred_series", "source", "mirror", "full"}
    assert all(len(p.get("description") or "") > 20 for p in properties.values()), properties
    assert set(properties["source"]["enum"]) == {"csv", "yahoo", "fred", "online"}
    assert "overlap_days" in properties["full"]["description"]


@pytest.mark.parametrize(("error", "retried"), [
    (TransientSourceError("HTTP 500, after the library's attempts"), False),
    (PermanentSourceError("unknown series"), False),
    (SourceUnreachableError("DNS failed"), False),
    (TimeoutError("task timeout"), False),
    (OperationalError("INSERT", {}, ConnectionError("server closed the connection")), True),
    (OSError(28, "No space left on device"), True),
])
def test_prefect_retries_only_what_the_library_did_not_classify(
    error: Exception, retried: bool
) -> None:
    from prefect.states import Failed

    assert retry_unclassified_only(None, None, Failed(data=error)) is retried
