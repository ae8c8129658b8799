"""Every deployment in prefect.yaml points at an importable flow with matching parameters."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint

REPO = Path(__file__).resolve().parents[2]


def _deployments() -> list[dict[str, Any]]:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    return list(spec["deployments"])


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_entrypoint_resolves_to_flow(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert isinstance(flow, Flow)
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(deployment.get("parameters") or {}) <= accepted
    assert deployment.get("enforce_parameter_schema") is True


def test_nightly_refresh_runs_on_weekdays_after_the_us_close() -> None:
    nightly = next(d for d in _deployments() if d["name"] == "nightly-data-refresh")
    (schedule,) = nightly["schedules"]
    _minute, hour, _, _, weekdays = schedule["cron"].split()
    assert schedule["timezone"] == "America/New_York"
    assert int(hour) >= 16 and weekdays == "1-5"


def test_the_report_runs_on_the_cpu_pool() -> None:
    report = next(d for d in _deployments() if d["name"] == "report")
    assert report["entrypoint"] == "flows/report.py:report"
    assert report["work_pool"]["name"] == "finscale-cpu"  # it needs no GPU slot
