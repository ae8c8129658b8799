"""A tiny real study: the pruner prunes, every trial is a tagged MLflow child run under the
study's parent run, the best parameters are stored (study, parent run, YAML), trials never
touch the test split, a study resumed by name continues its count, and a final run started
with ``--from-study`` applies every suggested field of the best trial."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from finscale.cli.main import main
from finscale.hpo.space import StudySpec, load_spec
from finscale.hpo.study import StudyReport, load_study, run_study
from finscale.workspace import Workspace
from tests.support.hpo import (
    artifact_text,
    filled_workspace,
    own_tracking_env,
    study_runs,
    tiny_spec,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N_TRIALS = 5
TrialState = optuna.trial.TrialState


@pytest.fixture(autouse=True)
def _own_tracking_env() -> Iterator[None]:
    with own_tracking_env():
        yield


@dataclass(frozen=True)
class Ran:
    spec: StudySpec
    path: Path
    workspace: Workspace
    report: StudyReport


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, shared_data_dir: Path) -> Ran:
    """One study of N_TRIALS tiny trials with an eager median pruner."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hpo-study")
    workspace = filled_workspace(root / "ws", shared_data_dir)
    path = tiny_spec(root, "hpotest")
    spec = load_spec(path)
    with own_tracking_env():  # module scope: before the per-test cleaner runs
        report = run_study(spec, workspace, n_trials=N_TRIALS)
    return Ran(spec, path, workspace, report)


def _study(ran: Ran) -> optuna.Study:
    return load_study(ran.spec.study_name(), ran.workspace.optuna_url)


def test_pruned_trials_occur_and_every_trial_is_a_tagged_child_run(ran: Ran) -> None:
    trials = _study(ran).get_trials()
    states = [t.state for t in trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert all(t.user_attrs["reason"] == "pruned" for t in pruned)
    assert all(t.last_step is not None and t.last_step <= 3 for t in pruned)
    assert any(t.last_step < 3 for t in pruned if t.last_step is not None)  # stopped early
    parent, children = study_runs(ran.workspace, ran.spec.study_name())
    assert [int(c.data.tags["hpo_trial"]) for c in children] == [t.number for t in trials]
    state_names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}
    for trial, child in zip(trials, children, strict=True):
        tags = child.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["hpo_state"] == state_names[trial.state]
        assert {k: tags[f"hpo_param.{k}"] for k in trial.params} == {
            k: str(v) for k, v in trial.params.items()}
        assert child.info.status == ("FINISHED" if trial.state == TrialState.COMPLETE
                                     else "KILLED")
        if trial.state == TrialState.PRUNED:
            assert tags["stop_reason"] == "pruned"


def test_best_parameters_are_stored_with_the_study_and_on_the_parent_run(ran: Ran) -> None:
    study = _study(ran)
    best = ran.report.best
    assert best is not None
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    top = max(complete, key=lambda t: t.value or 0.0)
    assert (best.trial, best.value, best.params) == (top.number, top.value, top.params)
    assert study.user_attrs["best"]["params"] == top.params
    parent, _ = study_runs(ran.workspace, ran.spec.study_name())
    assert parent.data.metrics["best_value"] == pytest.approx(top.value)
    stored = yaml.safe_load(artifact_text(ran.workspace, parent.info.run_id,
                                          "best_params.yaml"))
    assert stored["params"] == top.params and stored["trial"] == top.number
    history = artifact_text(ran.workspace, parent.info.run_id,
                            "plots/optimization_history.html")
    assert "plotly" in history.lower()


def test_trials_never_compute_test_metrics(ran: Ran) -> None:
    _, children = study_runs(ran.workspace, ran.spec.study_name())
    assert children
    for child in children:
        assert child.data.tags["test_split"] == "withheld"
        assert child.data.params["training.evaluate_test"] == "False"
        assert not [m for m in child.data.metrics if m.startswith("test_")]


def test_a_study_resumed_by_name_continues_its_trial_count(
    ran: Ran, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(ran.workspace.home)
    assert main(["--home", home, "hpo", "run", str(ran.path), "--trials",
                 str(N_TRIALS + 1)]) == 0
    out = capsys.readouterr().out
    assert ran.spec.study_name() in out and "ran          1 trials" in out
    numbers = [t.number for t in _study(ran).get_trials()]
    assert numbers == list(range(N_TRIALS + 1))
    assert main(["--home", home, "hpo", "run", str(ran.path), "--trials", "2"]) == 0
    assert "ran          0 trials" in capsys.readouterr().out  # the total is already there
    assert main(["--home", home, "hpo", "status", str(ran.path)]) == 0
    status = capsys.readouterr().out
    assert "pruned" in status and "complete" in status and "elapsed" in status


def test_a_final_run_from_the_study_applies_every_best_parameter(
    ran: Ran, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(ran.workspace.home)
    assert main(["--home", home, "hpo", "best", ran.spec.study_name()]) == 0
    printed = capsys.readouterr().out
    best = _study(ran).user_attrs["best"]
    assert yaml.safe_load(printed)["params"] == best["params"]
    assert main(["--home", home, "train", "--from-study", str(ran.path)]) == 0
    out = capsys.readouterr().out
    mlflow_line = next(line for line in out.splitlines() if line.startswith("mlflow "))
    run_id = mlflow_line.rsplit("run ", 1)[1].strip()
    run = MlflowClient(ran.workspace.mlflow_uri).get_run(run_id)
    for name, value in best["params"].items():
        assert run.data.params[name] == str(value), name
    assert "hpo_study" not in run.data.tags  # a final run, not a trial
    assert run.data.tags["test_split"] == "scored"  # the final run scores the test split once
    assert any(m.startswith("test_") for m in run.data.metrics)
