"""The `hpo` flow under the Prefect harness: each trial holds the strict `gpu` slot and
passes the thermal gate (file sensor); a study that already holds its trials runs none; the
deployment's parameters are typed and described for the UI's run form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from finscale.hpo.space import load_spec
from finscale.hpo.study import load_study
from flows.hpo import hpo
from tests.integration.test_train_flow import _ensure_gpu_limit
from tests.support.hpo import filled_workspace, own_tracking_env, study_runs, tiny_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _own_tracking_env() -> Iterator[None]:
    with own_tracking_env():
        yield


def _thermal(sensor: Path) -> tuple[str, ...]:
    return ("training.epochs=1", "thermal.sensor=file", f"thermal.file_path={sensor}",
            "thermal.soft_limit_c=80", "thermal.hard_limit_c=90", "thermal.poll_s=0.05")


def test_hpo_flow_gates_each_trial_inside_the_gpu_slot_and_resumes(
    prefect_harness: None, tmp_path: Path, shared_data_dir: Path
) -> None:
    torch.set_num_threads(1)
    _ensure_gpu_limit()
    workspace = filled_workspace(tmp_path / "ws", shared_data_dir)
    sensor = tmp_path / "gpu_temp"
    sensor.write_text("55.0")
    path = tiny_spec(tmp_path, "hpoflow", overrides=_thermal(sensor))
    result = hpo(spec_path=str(path), trials=2, home=str(workspace.home))
    spec = load_spec(path)
    assert result["study"] == spec.study_name() and result["remaining"] == 0
    trials = load_study(spec.study_name(), workspace.optuna_url).get_trials()
    assert [t.number for t in trials] == [0, 1]
    parent, children = study_runs(workspace, spec.study_name())
    assert len(children) == 2 and parent.info.status == "FINISHED"
    assert all(c.data.tags["thermal_sensor"] == "file" for c in children)
    # the study holds its two trials: a second flow run trains nothing
    again = hpo(spec_path=str(path), trials=2, home=str(workspace.home), gpu_slot=None)
    assert again["remaining"] == 0
    assert len(load_study(spec.study_name(), workspace.optuna_url).get_trials()) == 2


def test_hpo_flow_waits_at_the_gate_and_refuses_a_hot_host(
    prefect_harness: None, tmp_path: Path, shared_data_dir: Path
) -> None:
    workspace = filled_workspace(tmp_path / "ws", shared_data_dir)
    sensor = tmp_path / "gpu_temp"
    sensor.write_text("95.0")
    path = tiny_spec(tmp_path, "hpohot", overrides=_thermal(sensor))
    with pytest.raises(Exception, match="not cool"):
        hpo(spec_path=str(path), trials=1, home=str(workspace.home), gpu_slot=None,
            gate_timeout_s=0.2)
    trials = load_study(load_spec(path).study_name(), workspace.optuna_url).get_trials()
    assert trials == []  # the gate refused before any trial started


def test_deployment_parameters_are_typed_and_described() -> None:
    from prefect.utilities.callables import parameter_schema

    properties = parameter_schema(hpo).model_dump()["properties"]
    assert set(properties) == {"spec_path", "trials", "timeout_s", "storage", "home",
                               "worker", "gpu_slot", "gate_timeout_s"}
    for name, spec in properties.items():
        assert spec.get("description"), f"parameter {name} has no description for the UI"
    assert properties["worker"]["type"] == "integer"
    assert properties["gate_timeout_s"]["type"] == "number"
