"""The ``data_refresh`` flow under the Prefect test harness: real mirror data, a second run
that changes nothing, and a transient FRED fault that only a Prefect task retry absorbs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from finscale.data.refresh import RefreshStatus, RefreshSummary
from finscale.data.sources.fred import FRED_API_KEY_ENV
from finscale.manifest.store import Manifest
from finscale.runtime import CONFIG_ENV, DEFAULT_CONFIG
from finscale.workspace import Workspace
from flows.data_refresh import data_refresh
from tests.support.fake_fred import FakeFredServer

pytestmark = pytest.mark.integration

API_KEY = "flow-test-key"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FINSCALE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    return tmp_path / "home"


def test_flow_refreshes_every_series_then_reports_unchanged(
    prefect_harness: None, home: Path, shared_data_dir: Path
) -> None:
    first = data_refresh(source="csv", mirror=str(shared_data_dir))

    assert all(isinstance(s, RefreshSummary) for s in first)
    assert len(first) == 13 and {s.status for s in first} == {RefreshStatus.NEW_ROWS}
    assert {s.name: s.rows for s in first}["raw/market/SPY"] == 7802

    second = data_refresh(source="csv", mirror=str(shared_data_dir))
    assert {s.status for s in second} == {RefreshStatus.UNCHANGED}
    manifest = Manifest(Workspace.resolve(home).manifest_url, home)
    assert len(manifest.all_versions()) == 13 and all(r.ok for r in manifest.verify())
    manifest.close()


def test_flow_reports_a_bad_series_and_refreshes_the_rest(
    prefect_harness: None, home: Path, shared_data_dir: Path
) -> None:
    summaries = data_refresh(tickers=["VIX", "NOPE"], fred_series=[], source="csv",
                             mirror=str(shared_data_dir))

    by_symbol = {s.symbol: s for s in summaries}
    assert by_symbol["VIX"].status is RefreshStatus.NEW_ROWS
    assert by_symbol["NOPE"].status is RefreshStatus.FAILED and "NOPE" in by_symbol["NOPE"].reason


def test_transient_fault_is_retried_by_the_task(
    prefect_harness: None, home: Path, shared_data_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeFredServer(shared_data_dir / "fred", api_key=API_KEY) as server:
        config = tmp_path / "flow.yaml"
        # one in-process attempt, so the second request can only come from a Prefect retry
        config.write_text(yaml.safe_dump({
            "extends": str(DEFAULT_CONFIG.resolve()),
            "data": {"fred_api_root": server.root_url, "timeout_s": 10,
                     "retry": {"attempts": 1}},
        }))
        monkeypatch.setenv(CONFIG_ENV, str(config))
        monkeypatch.setenv(FRED_API_KEY_ENV, API_KEY)
        server.fail_next("500", times=1)

        # source fred = FRED series only: the default tickers are not touched (offline Yahoo)
        (summary,) = data_refresh(fred_series=["UNRATE"], source="fred")

        assert summary.status is RefreshStatus.NEW_ROWS and summary.rows > 400
        assert len(server.observation_requests()) == 2

    from prefect import get_client

    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_task_runs() if r.name == "refresh-fred-UNRATE"]
    assert runs and max(r.run_count for r in runs) == 2


def test_every_flow_parameter_has_a_description_for_the_ui_form() -> None:
    from prefect.utilities.callables import parameter_schema

    properties = parameter_schema(data_refresh.fn).model_dump()["properties"]
    assert set(properties) == {"tickers", "fred_series", "source", "mirror", "full"}
    assert all(len(p.get("description") or "") > 20 for p in properties.values()), properties
    assert set(properties["source"]["enum"]) == {"csv", "yahoo", "fred", "online"}
    assert "overlap_days" in properties["full"]["description"]
