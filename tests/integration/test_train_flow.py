"""The `train` flow under the Prefect harness: thermal gate (file sensor) then a tiny run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from finscale.workspace import Workspace
from flows.train import train
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


def test_train_flow_gates_then_trains(
    prefect_harness: None, workspace: Workspace, shared_data_dir: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    sensor = tmp_path / "gpu_temp"
    sensor.write_text("55.0")
    result = train(config_path=str(REPO / "configs" / "base.yaml"),
                   overrides=_overrides(sensor), home=str(workspace.home))
    assert result["stop_reason"] == "completed"
    assert result["run_key"].startswith("phase=flowtest|budget=10k")
    assert Path(str(result["checkpoint_path"])).is_file()
    assert str(result["tracking_uri"]).endswith("mlflow.db")


def test_train_flow_refuses_a_hot_host_after_the_gate_timeout(
    prefect_harness: None, workspace: Workspace, tmp_path: Path
) -> None:
    sensor = tmp_path / "gpu_temp"
    sensor.write_text("95.0")
    with pytest.raises(Exception, match="not cool"):
        train(config_path=str(REPO / "configs" / "base.yaml"),
              overrides=[*_overrides(sensor), "thermal.poll_s=0.05"],
              home=str(workspace.home), gate_timeout_s=0.2)
