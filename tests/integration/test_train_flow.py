"""The `train` flow under the Prefect harness: strict `gpu` slot, thermal gate (file sensor),
then a tiny run; a missing limit fails; the deployment's parameters are typed and described."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from finscale.workspace import Workspace
from flows.train import GPU_SLOT, train
from tests.support.raw_workspace import fill_raw_workspace

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _overrides(sensor_file: Path) -> list[str]:
    return [
        "experiment.phase=flowtest", "model.budget=10k", "dataset.context=32",
        "training.epochs=1", "training.device=cpu", "thermal.sensor=file",
        f"thermal.file_path={sensor_file}", "thermal.soft_limit_c=80",
        "thermal.hard_limit_c=90", "training.log_model=false",
    ]


def _ensure_gpu_limit() -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(GPU_SLOT)
        except ObjectNotFound:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=GPU_SLOT, limit=1))


def test_train_flow_holds_the_gpu_slot_gates_then_trains(
    prefect_harness: None, workspace: Workspace, shared_data_dir: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    _ensure_gpu_limit()
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    sensor = tmp_path / "gpu_temp"
    sensor.write_text("55.0")
    result = train(config_path=str(REPO / "configs" / "base.yaml"),
                   overrides=_overrides(sensor), home=str(workspace.home))
    assert result["stop_reason"] == "completed"
    assert result["run_key"].startswith("phase=flowtest|tickers=SPY|timescale=daily|budget=10k")
    assert Path(str(result["checkpoint_path"])).is_file()
    assert str(result["tracking_uri"]).endswith("mlflow.db")


def test_a_missing_gpu_limit_fails_instead_of_running_unslotted(
    prefect_harness: None, workspace: Workspace, tmp_path: Path
) -> None:
    sensor = tmp_path / "gpu_temp"
    sensor.write_text("55.0")
    with pytest.raises(Exception, match="no-such-limit"):
        train(config_path=str(REPO / "configs" / "base.yaml"), overrides=_overrides(sensor),
              home=str(workspace.home), gpu_slot="no-such-limit")
    assert not (workspace.home / "mlflow.db").exists()  # nothing trained


def test_train_flow_refuses_a_hot_host_after_the_gate_timeout(
    prefect_harness: None, workspace: Workspace, tmp_path: Path
) -> None:
    sensor = tmp_path / "gpu_temp"
    sensor.write_text("95.0")
    with pytest.raises(Exception, match="not cool"):
        train(config_path=str(REPO / "configs" / "base.yaml"),
              overrides=[*_overrides(sensor), "thermal.poll_s=0.05"],
              home=str(workspace.home), gate_timeout_s=0.2, gpu_slot=None)


def test_deployment_parameters_are_typed_and_described() -> None:
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(train).model_dump()
    properties = schema["properties"]
    assert set(properties) == {"config_path", "overrides", "resume", "home", "gpu_slot",
                               "gate_timeout_s", "gpu_lease_s"}
    for name, spec in properties.items():
        assert spec.get("description"), f"parameter {name} has no description for the UI"
    assert properties["resume"]["type"] == "boolean"
    assert properties["overrides"]["type"] == "array"
    assert properties["gate_timeout_s"]["type"] == "number"
    # Prefect's server refuses leases outside 60 s .. 1 day: refused at the form instead
    assert (properties["gpu_lease_s"]["minimum"], properties["gpu_lease_s"]["maximum"]) == (
        60, 86400)
