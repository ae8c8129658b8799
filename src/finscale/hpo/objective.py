"""One trial = one training run: suggest, build the config, train with a pruning hook.

The trainer knows nothing of Optuna: ``PruningHook`` is an epoch hook that reports each
epoch's validation value to the trial and returns ``pruned`` when the pruner says so.
The trial config always ends with ``training.evaluate_test=false`` and the objective is
handed nothing but that config, so no trial can load, let alone score, the test split.

Outcomes (Optuna state, ``hpo_state`` tag of the trial's MLflow child run):
* complete: the run finished; its value is the best validation value, or the WORST value
  when the model collapsed (a collapsed model must never look good);
* pruned: the pruner stopped it, the suggestion cannot be built (budget resolver or config
  validation refused it) or another worker is training the very same run: reason kept;
* failed: it raised (error kept), the thermal guard stopped it (reason ``thermal``) or it was
  interrupted; thermal and interrupted trials are queued again, so a resumed study reruns
  their parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from finscale.config.errors import ConfigError
from finscale.hpo.config import Choice
from finscale.hpo.space import StudySpec, param_overrides, suggest
from finscale.models.budget import BudgetMismatchError
from finscale.tracking import (
    STATUS_FAILED,
    STATUS_FINISHED,
    STATUS_KILLED,
    TrackingTarget,
    find_run_ids,
    record_child_run,
    update_run,
)
from finscale.training.run import RunHooks, TrainResult, train_run
from finscale.training.run_lock import RunLockedError
from finscale.workspace import Workspace

STATE_COMPLETE = "complete"
STATE_PRUNED = "pruned"
STATE_FAILED = "failed"
REASON_PRUNED = "pruned"  # the epoch hook's stop reason (the trainer ends the run KILLED)
REASON_THERMAL = "thermal"
REASON_INTERRUPTED = "interrupted"
REASON_ERROR = "error"
REQUEUED_REASONS = (REASON_THERMAL, REASON_INTERRUPTED)
RUN_STATUS = {STATE_COMPLETE: STATUS_FINISHED, STATE_PRUNED: STATUS_KILLED,
              STATE_FAILED: STATUS_FAILED}
MAX_ERROR_CHARS = 2000
# user attributes of a trial
ATTR_OVERRIDES = "overrides"
ATTR_REASON = "reason"
ATTR_ERROR = "error"
ATTR_RUN_ID = "mlflow_run_id"
ATTR_COLLAPSED = "collapsed"
# tags of a trial's MLflow run
TAG_STUDY = "hpo_study"
TAG_TRIAL = "hpo_trial"
TAG_ROLE = "hpo_role"
TAG_STATE = "hpo_state"
TAG_REASON = "hpo_reason"
TAG_PARAM_PREFIX = "hpo_param."
ROLE_TRIAL = "trial"


class TrialFailed(RuntimeError):
    """A trial ended without a value (thermal stop, or a stop reason no outcome covers)."""


def worst_value(metric: str) -> float:
    """The worst value ``metric`` can take: AUC 0, log loss +inf."""
    return 0.0 if metric == "val_auc" else math.inf


class PruningHook:
    """Epoch hook: report the epoch's value; return ``pruned`` when the pruner says so."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.last_epoch = 0

    def __call__(self, metrics: dict[str, float]) -> str | None:
        value = metrics.get(self.metric, math.nan)
        if not math.isfinite(value):  # an undefined AUC is not a good one
            value = worst_value(self.metric)
        self.last_epoch = int(metrics["epoch"])
        self.trial.report(value, step=self.last_epoch)
        return REASON_PRUNED if self.trial.should_prune() else None


@dataclass(frozen=True)
class TrialContext:
    """What every trial of one study shares."""

    spec: StudySpec
    workspace: Workspace
    study_name: str
    parent_run_id: str
    target: TrackingTarget


def trial_tags(study_name: str, number: int, params: Mapping[str, Choice]) -> dict[str, str]:
    """Tags a trial's MLflow run carries from its start: study, number, suggestions."""
    return {TAG_STUDY: study_name, TAG_TRIAL: str(number), TAG_ROLE: ROLE_TRIAL,
            **{f"{TAG_PARAM_PREFIX}{name}": str(value) for name, value in params.items()}}


class Objective:
    """``study.optimize(Objective(context))``: one training run per trial."""

    def __init__(self, context: TrialContext) -> None:
        self.context = context
        self.metric = context.spec.file.study.metric

    def __call__(self, trial: optuna.Trial) -> float:
        params = suggest(trial, self.context.spec.file.space)
        trial.set_user_attr(ATTR_OVERRIDES, param_overrides(params))
        tags = trial_tags(self.context.study_name, trial.number, params)
        try:
            config = self.context.spec.trial_config(params)
            pruning = PruningHook(trial, self.metric)
            hooks = RunHooks(epoch_hooks=[pruning], parent_run_id=self.context.parent_run_id,
                             tags=tags)
            result = train_run(config, self.context.workspace, hooks=hooks)
        except (ConfigError, BudgetMismatchError, RunLockedError) as exc:
            # a suggestion that cannot be built, or one another worker is training right now
            self._close(trial, tags, STATE_PRUNED, str(exc))
            raise optuna.TrialPruned(f"refused: {exc}") from exc
        except KeyboardInterrupt:
            self._close(trial, tags, STATE_FAILED, REASON_INTERRUPTED, requeue=True)
            raise
        except Exception as exc:
            trial.set_user_attr(ATTR_ERROR, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
            self._close(trial, tags, STATE_FAILED, REASON_ERROR)
            raise
        return self._judge(trial, tags, result, pruning.last_epoch)

    def _judge(self, trial: optuna.Trial, tags: dict[str, str], result: TrainResult,
               last_epoch: int) -> float:
        """Value, prune or failure from a finished ``train_run``."""
        run_id = None if getattr(result, "reused", False) else result.run_id
        if getattr(result, "reused", False):
            tags = {**tags, "hpo_reused_run": result.run_id}
        if result.stop_reason == REASON_PRUNED:
            self._close(trial, tags, STATE_PRUNED, REASON_PRUNED, run_id=run_id)
            raise optuna.TrialPruned(f"pruned after epoch {last_epoch}")
        if result.stop_reason == REASON_THERMAL:
            self._close(trial, tags, STATE_FAILED, REASON_THERMAL, run_id=run_id, requeue=True)
            raise TrialFailed(f"trial {trial.number}: the thermal guard stopped the run "
                              f"{result.run_id}; its parameters are queued again")
        if result.stop_reason not in ("completed", "early_stopping"):
            self._close(trial, tags, STATE_FAILED, result.stop_reason, run_id=run_id)
            raise TrialFailed(f"trial {trial.number}: run stopped ({result.stop_reason})")
        value = result.best_metric
        reason = result.stop_reason
        if result.collapsed or value is None or not math.isfinite(value):
            # collapsed: predicts the prior; it ranks nothing, whatever its best-epoch value
            reason = "collapsed" if result.collapsed else "undefined value"
            trial.set_user_attr(ATTR_COLLAPSED, result.collapsed)
            value = worst_value(self.metric)
        self._close(trial, tags, STATE_COMPLETE, reason, run_id=run_id, value=value)
        return float(value)

    def _close(self, trial: optuna.Trial, tags: dict[str, str], state: str, reason: str, *,
               run_id: str | None = None, value: float | None = None,
               requeue: bool = False) -> None:
        """Record the outcome on the trial and its MLflow run (made here if training never
        started one); a requeued trial's parameters go back into the study's queue."""
        trial.set_user_attr(ATTR_REASON, reason)
        outcome = {TAG_STATE: state, TAG_REASON: reason}
        metrics = {"hpo_value": value} if value is not None and math.isfinite(value) else {}
        run_ids = [run_id] if run_id else find_run_ids(
            self.context.target, {TAG_STUDY: tags[TAG_STUDY], TAG_TRIAL: tags[TAG_TRIAL]})
        for found in run_ids:
            update_run(self.context.target, found, tags=outcome, metrics=metrics)
        if not run_ids:
            run_ids = [record_child_run(self.context.target, self.context.parent_run_id,
                                        f"trial {trial.number}", {**tags, **outcome},
                                        RUN_STATUS[state])]
            update_run(self.context.target, run_ids[0], metrics=metrics)
        trial.set_user_attr(ATTR_RUN_ID, run_ids[-1])
        if requeue:
            trial.study.enqueue_trial(dict(trial.params),
                                      user_attrs={"requeued_from": trial.number})


def trial_summary(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A finished trial as plain data (CLI, flow results, the parent run's YAML)."""
    state = {optuna.trial.TrialState.COMPLETE: STATE_COMPLETE,
             optuna.trial.TrialState.PRUNED: STATE_PRUNED,
             optuna.trial.TrialState.FAIL: STATE_FAILED}.get(trial.state, trial.state.name.lower())
    return {"number": trial.number, "state": state, "value": trial.value,
            "reason": trial.user_attrs.get(ATTR_REASON, ""),
            "error": trial.user_attrs.get(ATTR_ERROR, ""), "params": dict(trial.params),
            "mlflow_run_id": trial.user_attrs.get(ATTR_RUN_ID, ""),
            "seconds": trial.duration.total_seconds() if trial.duration else None}
