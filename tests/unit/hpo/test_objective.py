"""The objective's pieces on real Optuna studies and a real MLflow store: the pruning hook
reports every epoch and stops a trial the pruner prunes (an undefined AUC counts as the
worst); a collapsed run reports the worst value, never its (good-looking) best epoch."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from finscale.hpo.objective import (
    REASON_PRUNED,
    Objective,
    PruningHook,
    TrialContext,
    trial_tags,
    worst_value,
)
from finscale.hpo.space import load_spec
from finscale.tracking import TrackingTarget, ensure_run, record_child_run
from finscale.training.run import TrainResult
from finscale.workspace import Workspace
from tests.support.hpo import own_tracking_env, tiny_spec


@pytest.fixture(autouse=True)
def _own_tracking_env() -> Iterator[None]:
    with own_tracking_env():
        yield


def _median_study() -> optuna.Study:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(
        n_startup_trials=1, n_warmup_steps=0))
    first = study.ask()
    for epoch, value in ((1, 0.70), (2, 0.75)):
        first.report(value, epoch)
    study.tell(first, 0.75)
    return study


def test_the_pruning_hook_reports_each_epoch_and_stops_what_the_pruner_prunes() -> None:
    study = _median_study()
    good, bad, undefined = study.ask(), study.ask(), study.ask()
    assert PruningHook(good, "val_auc")({"epoch": 1.0, "val_auc": 0.80}) is None
    assert PruningHook(bad, "val_auc")({"epoch": 1.0, "val_auc": 0.60}) == REASON_PRUNED
    hook = PruningHook(undefined, "val_auc")
    assert hook({"epoch": 1.0, "val_auc": math.nan}) == REASON_PRUNED
    assert hook.last_epoch == 1
    trials = study.get_trials(deepcopy=False)
    assert trials[1].intermediate_values == {1: 0.80}
    assert trials[3].intermediate_values == {1: worst_value("val_auc")}


def test_worst_values_are_the_ends_of_each_metric() -> None:
    assert worst_value("val_auc") == 0.0
    assert worst_value("val_loss") == math.inf


def _result(run_id: str, *, collapsed: bool, best: float) -> TrainResult:
    return TrainResult(run_id=run_id, run_key="k", best_metric=best, metric_name="val_auc",
                       stop_reason="completed", checkpoint_path="", n_parameters=30_000,
                       tracking_uri="", collapsed=collapsed, device="cpu", seconds=1.0)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """One MLflow store for the module (creating its schema is the slow part)."""
    return Workspace.resolve(tmp_path_factory.mktemp("objective") / "ws").ensure()


@pytest.mark.parametrize(("collapsed", "expected"), [(True, 0.0), (False, 0.81)])
def test_a_collapsed_run_reports_the_worst_value(
    tmp_path: Path, workspace: Workspace, collapsed: bool, expected: float
) -> None:
    spec = load_spec(tiny_spec(tmp_path, "collapse"))
    target = TrackingTarget.for_workspace(workspace, "finscale")
    parent = ensure_run(target, None, "study", {"hpo_role": "study"})
    context = TrialContext(spec, workspace, "study", parent, target)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    tags = trial_tags("study", trial.number, {})
    child = record_child_run(target, parent, "trial 0", tags, "FINISHED")
    value = Objective(context)._judge(trial, tags, _result(child, collapsed=collapsed,
                                                           best=0.81), last_epoch=3)
    assert value == expected
    run = MlflowClient(workspace.mlflow_uri).get_run(child)
    assert run.data.tags["hpo_state"] == "complete"
    assert run.data.tags["hpo_reason"] == ("collapsed" if collapsed else "completed")
    assert trial.user_attrs.get("collapsed", False) is collapsed
