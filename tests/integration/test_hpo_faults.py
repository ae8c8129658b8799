"""HPO faults on real trials: a trial that raises is recorded failed with its error and the
study goes on; a suggestion the budget resolver cannot fit is pruned with its reason; a
thermal stop (file sensor) fails the trial with reason ``thermal``, stops the study, and a
resumed study reruns those parameters; Ctrl-C leaves the study consistent and resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch

from finscale.hpo.space import load_spec
from finscale.hpo.study import STOP_THERMAL, HpoStudy, load_study, run_study
from finscale.workspace import Workspace
from tests.support.hpo import REPO, filled_workspace, own_tracking_env, study_runs, tiny_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TrialState = optuna.trial.TrialState
ONE_EPOCH = ("training.epochs=1",)
SIGINT_POLL_S = 0.1
SIGINT_WAIT_S = 120.0
EXIT_WAIT_S = 60.0


@pytest.fixture(autouse=True)
def _own_tracking_env() -> Iterator[None]:
    with own_tracking_env():
        yield


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, shared_data_dir: Path) -> Workspace:
    torch.set_num_threads(1)
    return filled_workspace(tmp_path_factory.mktemp("hpo-faults") / "ws", shared_data_dir)


def test_a_trial_that_raises_is_recorded_failed_and_the_study_goes_on(
    workspace: Workspace, tmp_path: Path
) -> None:
    space = {"training.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
             "model.patch_len": {"type": "categorical", "choices": [8, 48]}}
    spec = load_spec(tiny_spec(tmp_path, "hpofail", overrides=ONE_EPOCH, space=space))
    # patch 48 > context 32: the model cannot be built, the run raises
    queue = HpoStudy.open(spec, workspace).study
    queue.enqueue_trial({"model.patch_len": 48})
    queue.enqueue_trial({"model.patch_len": 8})
    report = run_study(spec, workspace, n_trials=2)
    first, second = load_study(spec.study_name(), workspace.optuna_url).get_trials()
    assert first.state == TrialState.FAIL and first.user_attrs["reason"] == "error"
    assert "patch_len 48" in first.user_attrs["error"]
    assert second.state == TrialState.COMPLETE  # the study went on
    assert report.stop is None and report.remaining == 0
    _, children = study_runs(workspace, spec.study_name())
    assert [c.data.tags["hpo_state"] for c in children] == ["failed", "complete"]
    assert children[0].info.status == "FAILED"


def test_a_shape_the_budget_cannot_fit_is_pruned_with_its_reason(
    workspace: Workspace, tmp_path: Path
) -> None:
    space = {"model.n_layers": {"type": "int", "low": 1, "high": 40}}
    spec = load_spec(tiny_spec(tmp_path, "hpobudget", overrides=ONE_EPOCH, space=space))
    HpoStudy.open(spec, workspace).study.enqueue_trial({"model.n_layers": 40})
    run_study(spec, workspace, n_trials=1)
    (trial,) = load_study(spec.study_name(), workspace.optuna_url).get_trials()
    assert trial.state == TrialState.PRUNED
    assert "budget 30k" in trial.user_attrs["reason"] and "n_layers=40" in trial.user_attrs[
        "reason"]
    _, (child,) = study_runs(workspace, spec.study_name())
    assert child.data.tags["hpo_state"] == "pruned" and child.info.status == "KILLED"


def test_a_thermal_stop_fails_the_trial_and_the_resumed_study_reruns_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    sensor = tmp_path / "gpu_temp"
    sensor.write_text("95.0")
    thermal = (*ONE_EPOCH, "thermal.sensor=file", f"thermal.file_path={sensor}",
               "thermal.soft_limit_c=80", "thermal.hard_limit_c=90",
               "training.thermal_check_every_steps=1")
    spec = load_spec(tiny_spec(tmp_path, "hpothermal", overrides=thermal))
    report = run_study(spec, workspace, n_trials=1)
    assert report.stop == STOP_THERMAL and report.remaining == 1
    (hot,) = load_study(spec.study_name(), workspace.optuna_url).get_trials(
        states=(TrialState.FAIL,))
    assert hot.user_attrs["reason"] == "thermal"
    _, (child,) = study_runs(workspace, spec.study_name())
    assert child.data.tags["hpo_reason"] == "thermal"
    assert child.data.tags["stop_reason"] == "thermal"
    sensor.write_text("50.0")
    resumed = run_study(spec, workspace, n_trials=1)
    assert resumed.stop is None and resumed.remaining == 0
    trials = load_study(spec.study_name(), workspace.optuna_url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].params == hot.params  # the hot trial's parameters ran again


def _running_trial(spec_name: str, url: str) -> bool:
    try:
        study = load_study(spec_name, url)
    except LookupError:
        return False
    return bool(study.get_trials(states=(TrialState.RUNNING,)))


def test_ctrl_c_leaves_the_study_consistent_and_resumable(
    workspace: Workspace, tmp_path: Path
) -> None:
    # long enough to be interrupted, and a resumed trial early-stops after a few epochs
    path = tiny_spec(tmp_path, "hpointerrupt",
                     overrides=("training.epochs=30", "training.patience=1"))
    spec = load_spec(path)
    env = {**os.environ, "FINSCALE_HOME": str(workspace.home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "finscale.cli.main", "hpo", "run", str(path), "--trials", "1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + SIGINT_WAIT_S
    while not _running_trial(spec.study_name(), workspace.optuna_url):
        assert process.poll() is None and time.monotonic() < deadline, process.stdout
        time.sleep(SIGINT_POLL_S)
    # at once: on a quiet machine the whole trial (setup + early-stopped training) takes a
    # few seconds, and a signal after it would find nothing to interrupt
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=EXIT_WAIT_S)
    assert process.returncode == 130, output
    assert "run the same command to continue" in output
    study = load_study(spec.study_name(), workspace.optuna_url)
    stopped, queued = study.get_trials()
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["reason"] == "interrupted"
    assert queued.state == TrialState.WAITING  # its parameters, queued again
    assert not study.get_trials(states=(TrialState.RUNNING,))
    parent, _ = study_runs(workspace, spec.study_name())
    assert parent.info.status == "KILLED"
    # resumed (with the stopped parameters queued again): the study completes its one trial
    resumed = run_study(spec, workspace, n_trials=1)
    assert resumed.remaining == 0
    trials = load_study(spec.study_name(), workspace.optuna_url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].params == stopped.params
