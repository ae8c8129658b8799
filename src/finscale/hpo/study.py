"""One Optuna study per (experiment, cell): open it (created once, safely), run trials,
publish progress to the study's MLflow parent run, read its best parameters.

The study name is the cell's run identity before any suggestion (``StudySpec.study_name``),
so running the same HPO file again continues the same study. ``n_trials`` is the total the
study should hold: a second run asking for 16 after 12 adds 4. Trials that failed for a
reason that says nothing about their parameters (thermal stop, Ctrl-C) do not count and are
rerun from the queue. Several workers (processes or hosts) may run one study at once;
each counts before it starts a trial, so the total can overshoot by at most workers - 1.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import yaml

from finscale.config.redact import redact_text
from finscale.hpo.config import (
    HyperbandPrunerConfig,
    MedianPrunerConfig,
    Pruner,
    TpeSamplerConfig,
)
from finscale.hpo.objective import (
    ATTR_COLLAPSED,
    ATTR_OVERRIDES,
    ATTR_REASON,
    REASON_ERROR,
    REASON_THERMAL,
    REQUEUED_REASONS,
    TAG_ROLE,
    TAG_STUDY,
    Objective,
    TrialContext,
    trial_summary,
)
from finscale.hpo.space import StudySpec, load_spec
from finscale.hpo.storage import creation_lock, make_storage
from finscale.tracking import (
    STATUS_FINISHED,
    STATUS_KILLED,
    TrackingTarget,
    ensure_run,
    update_run,
)
from finscale.workspace import Workspace

log = logging.getLogger(__name__)

TrialState = optuna.trial.TrialState
ATTR_SPEC = "spec_path"
ATTR_CONFIG = "config_path"
ATTR_BASE = "base_overrides"
ATTR_METRIC = "metric"
ATTR_PARENT = "mlflow_parent_run_id"
ATTR_EXPERIMENT = "mlflow_experiment"
ATTR_BEST = "best"
ROLE_STUDY = "study"
BEST_ARTIFACT = "best_params.yaml"
STOP_THERMAL = "thermal"
STOP_FAILURES = "failures"
STOP_TIMEOUT = "timeout"
STATUS_RUNNING = "RUNNING"
DIRECTIONS = {"val_auc": "maximize", "val_loss": "minimize"}


class StudyNotFoundError(LookupError):
    """No study of that name in the storage."""


def storage_url(spec: StudySpec | None, workspace: Workspace, storage: str | None) -> str:
    """The explicit URL, else the HPO file's, else ``sqlite:///<workspace>/optuna.db``."""
    from_file = spec.file.study.storage if spec is not None else None
    return storage or from_file or workspace.optuna_url


def make_sampler(
    cfg: TpeSamplerConfig, worker: int, n_existing: int
) -> optuna.samplers.BaseSampler:
    """Seeded multivariate TPE. Its seed mixes the file's seed with the worker number and
    the trials already in the study: a resumed study or a second worker must not draw the
    same random start again (two workers opening at once see different counts or numbers)."""
    seed = int(np.random.SeedSequence([cfg.seed, worker, n_existing]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=seed, multivariate=cfg.multivariate,
                                      n_startup_trials=cfg.n_startup_trials)


def make_pruner(cfg: Pruner, max_epochs: int) -> optuna.pruners.BasePruner:
    """The configured pruner; Hyperband's maximum resource is the cell's epochs."""
    if isinstance(cfg, MedianPrunerConfig):
        return optuna.pruners.MedianPruner(n_startup_trials=cfg.n_startup_trials,
                                           n_warmup_steps=cfg.n_warmup_steps)
    if isinstance(cfg, HyperbandPrunerConfig):
        return optuna.pruners.HyperbandPruner(min_resource=cfg.min_resource,
                                              max_resource=max_epochs,
                                              reduction_factor=cfg.reduction_factor)
    return optuna.pruners.NopPruner()


def counts_toward_total(trial: optuna.trial.FrozenTrial) -> bool:
    """Complete, pruned, running and failed trials count; thermal or interrupted ones do not
    (their parameters are queued again)."""
    if trial.state == TrialState.FAIL:
        return trial.user_attrs.get(ATTR_REASON) not in REQUEUED_REASONS
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


@dataclass(frozen=True)
class BestParams:
    """The best usable trial (complete, not collapsed) and how to train it again."""

    study: str
    trial: int
    value: float
    metric: str
    params: dict[str, Any]
    overrides: list[str]
    config_path: str
    base_overrides: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"study": self.study, "trial": self.trial, "metric": self.metric,
                "value": self.value, "params": self.params, "overrides": self.overrides,
                "config_path": self.config_path, "base_overrides": self.base_overrides}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.as_dict(), sort_keys=False)


def best_params(study: optuna.Study) -> BestParams | None:
    """The best complete trial that did not collapse, or None."""
    metric = study.user_attrs.get(ATTR_METRIC, "val_auc")
    usable = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if not t.user_attrs.get(ATTR_COLLAPSED) and t.value is not None]
    if not usable:
        return None
    sign = 1.0 if DIRECTIONS[metric] == "maximize" else -1.0
    best = max(usable, key=lambda t: (sign * float(t.value or 0.0), -t.number))
    return BestParams(
        study=study.study_name, trial=best.number, value=float(best.value or 0.0),
        metric=metric, params=dict(best.params),
        overrides=list(best.user_attrs.get(ATTR_OVERRIDES, [])),
        config_path=str(study.user_attrs.get(ATTR_CONFIG, "")),
        base_overrides=list(study.user_attrs.get(ATTR_BASE, [])),
    )


@dataclass(frozen=True)
class TrialOutcome:
    """One trial as run: its summary, trials still to run, and why to stop (or None)."""

    trial: dict[str, Any]
    remaining: int
    stop: str | None


class HpoStudy:
    """An open study with its spec, workspace and MLflow parent run."""

    def __init__(self, spec: StudySpec, study: optuna.Study, context: TrialContext) -> None:
        self.spec = spec
        self.study = study
        self.context = context

    @classmethod
    def open(cls, spec: StudySpec, workspace: Workspace, storage: str | None = None,
             worker: int = 0) -> HpoStudy:
        """Create the study (and its parent run) or continue it; safe for simultaneous
        workers: creation happens under the storage's creation lock."""
        url = storage_url(spec, workspace, storage)
        name = spec.study_name()
        cell = spec.cell_config()
        settings = spec.file.study
        target = TrackingTarget.for_workspace(workspace, cell.tracking.experiment,
                                              cell.tracking.uri)
        with creation_lock(url):
            study = optuna.create_study(
                storage=make_storage(url, settings.heartbeat_s, settings.grace_s),
                study_name=name, direction=DIRECTIONS[settings.metric], load_if_exists=True,
                pruner=make_pruner(settings.pruner, cell.training.epochs),
            )
            parent = _ensure_parent(study, spec, target, url)
        study.sampler = make_sampler(settings.sampler, worker, len(study.trials))
        context = TrialContext(spec=spec, workspace=workspace, study_name=name,
                               parent_run_id=parent, target=target)
        return cls(spec, study, context)

    @property
    def name(self) -> str:
        return self.study.study_name

    def remaining(self, n_trials: int) -> int:
        """Trials still to run for a study of ``n_trials`` in total."""
        return max(0, n_trials - sum(map(counts_toward_total, self.study.get_trials(
            deepcopy=False))))

    def run_trial(self, n_trials: int) -> TrialOutcome:
        """Run one trial; an error is recorded (failed trial) and does not propagate,
        Ctrl-C does (after the trial is recorded)."""
        finished: list[optuna.trial.FrozenTrial] = []
        self.study.optimize(Objective(self.context), n_trials=1, catch=(Exception,),
                            callbacks=[lambda _study, trial: finished.append(trial)])
        trial = finished[-1]
        self.publish(plots=False)
        return TrialOutcome(trial_summary(trial), self.remaining(n_trials), self._stop(trial))

    def begin(self) -> None:
        """Mark the parent run RUNNING (a worker is at work) with the current progress."""
        self.publish(plots=False, status=STATUS_RUNNING)

    def finish(self, status: str) -> BestParams | None:
        """Publish everything, plots included, and end the parent run with ``status``."""
        return self.publish(plots=True, status=status)

    def _stop(self, trial: optuna.trial.FrozenTrial) -> str | None:
        """``thermal`` after a thermal stop; ``failures`` after too many errors in a row."""
        if trial.user_attrs.get(ATTR_REASON) == REASON_THERMAL:
            return STOP_THERMAL
        limit = self.spec.file.study.max_consecutive_failures
        done = [t for t in self.study.get_trials(deepcopy=False)
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
        last = sorted(done, key=lambda t: t.number)[-limit:]
        errors = [t for t in last if t.state == TrialState.FAIL
                  and t.user_attrs.get(ATTR_REASON) == REASON_ERROR]
        return STOP_FAILURES if len(last) == limit and len(errors) == limit else None

    def publish(self, *, plots: bool, status: str | None = None) -> BestParams | None:
        """Best value and parameters (study attribute, parent-run metrics, tags and YAML),
        trial counts, optionally the Optuna plots; ``status`` moves the parent run."""
        trials = self.study.get_trials(deepcopy=False)
        states = Counter(trial_summary(t)["state"] for t in trials)
        metrics: dict[str, float] = {f"n_{state}": float(n) for state, n in states.items()}
        tags: dict[str, Any] = {}
        texts: dict[str, str] = {}
        best = best_params(self.study)
        if best is not None:
            self.study.set_user_attr(ATTR_BEST, best.as_dict())
            metrics["best_value"] = best.value
            tags = {"best_trial": best.trial,
                    **{f"best_param.{k}": v for k, v in best.params.items()}}
            texts[BEST_ARTIFACT] = best.to_yaml()
        if plots:
            texts.update(study_plots(self.study))
        update_run(self.context.target, self.context.parent_run_id, tags=tags,
                   metrics=metrics, step=len(trials), texts=texts, status=status)
        return best


def _ensure_parent(study: optuna.Study, spec: StudySpec, target: TrackingTarget,
                   url: str) -> str:
    """The study's MLflow parent run (made, and its id stored, by the first worker)."""
    tags = {TAG_ROLE: ROLE_STUDY, TAG_STUDY: study.study_name,
            "hpo_metric": spec.file.study.metric, "hpo_storage": redact_text(url),
            "hpo_spec": str(spec.source)}
    parent = ensure_run(target, study.user_attrs.get(ATTR_PARENT), study.study_name, tags)
    attrs = {ATTR_PARENT: parent, ATTR_SPEC: str(spec.source),
             ATTR_CONFIG: str(spec.config_path), ATTR_BASE: list(spec.base_overrides),
             ATTR_METRIC: spec.file.study.metric, ATTR_EXPERIMENT: target.experiment}
    for key, value in attrs.items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
    return parent


def study_plots(study: optuna.Study) -> dict[str, str]:
    """Optimisation history and parameter importances as self-contained HTML (the MLflow UI
    works offline, so plotly.js is inlined); importances need two complete trials."""
    from optuna.visualization import plot_optimization_history, plot_param_importances

    figures = {"plots/optimization_history.html": plot_optimization_history(study)}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) >= 2:
        try:
            figures["plots/param_importances.html"] = plot_param_importances(study)
        except (ValueError, RuntimeError) as exc:  # e.g. every complete trial alike
            log.warning("parameter importances not plotted: %s", exc)
    return {name: fig.to_html(include_plotlyjs=True, full_html=True)
            for name, fig in figures.items()}


@dataclass
class StudyReport:
    """What one ``run_study`` call did."""

    study: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    stop: str | None = None
    remaining: int = 0
    best: BestParams | None = None
    parent_run_id: str = ""


def run_study(
    spec: StudySpec, workspace: Workspace, *, n_trials: int | None = None,
    timeout_s: float | None = None, storage: str | None = None, worker: int = 0,
    on_trial: Callable[[TrialOutcome], None] | None = None,
) -> StudyReport:
    """Run trials until the study holds ``n_trials`` (default: the file's), the timeout
    passes, the host is too hot, or trials keep failing. Ctrl-C ends the parent run KILLED
    and propagates; the study stays consistent (the interrupted trial is failed and queued)."""
    total = n_trials or spec.file.study.n_trials
    timeout = timeout_s or spec.file.study.timeout_s
    hpo = HpoStudy.open(spec, workspace, storage, worker)
    report = StudyReport(study=hpo.name, parent_run_id=hpo.context.parent_run_id)
    started = time.monotonic()
    hpo.begin()
    status = STATUS_KILLED
    try:
        while hpo.remaining(total) > 0:
            if timeout is not None and time.monotonic() - started >= timeout:
                report.stop = STOP_TIMEOUT
                break
            outcome = hpo.run_trial(total)
            report.trials.append(outcome.trial)
            if on_trial is not None:
                on_trial(outcome)
            if outcome.stop is not None:
                report.stop = outcome.stop
                break
        status = STATUS_FINISHED
    finally:
        report.best = hpo.finish(status)
        report.remaining = hpo.remaining(total)
    return report


def load_study(name: str, url: str) -> optuna.Study:
    """An existing study (for status, best parameters); refuses with the names it has."""
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError as exc:
        names = optuna.get_all_study_names(storage=url)
        known = "\n  ".join(names) if names else "(none)"
        raise StudyNotFoundError(f"no study {name!r} in {redact_text(url)}; it has:\n  "
                                 f"{known}") from exc


@dataclass(frozen=True)
class StudyStatus:
    """Trials by state (and why the unfinished ones ended), best, time spent."""

    study: str
    metric: str
    states: dict[str, int]
    reasons: dict[str, int]
    best: BestParams | None
    elapsed_s: float | None
    trial_seconds: float


def study_status(study: optuna.Study) -> StudyStatus:
    """``finscale hpo status``: counts, reasons (``pruned: refused ...``), best, elapsed
    (first trial start to last trial end) and the summed trial time."""
    trials = study.get_trials(deepcopy=False)
    summaries = [trial_summary(t) for t in trials]
    reasons = Counter(f"{s['state']}: {(s['reason'] or '-')[:80]}" for s in summaries
                      if s["state"] in ("pruned", "failed"))
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    elapsed = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    return StudyStatus(
        study=study.study_name, metric=study.user_attrs.get(ATTR_METRIC, "val_auc"),
        states=dict(Counter(s["state"] for s in summaries)), reasons=dict(reasons),
        best=best_params(study), elapsed_s=elapsed,
        trial_seconds=sum(t.duration.total_seconds() for t in trials if t.duration),
    )


def resolve_study(ref: str, workspace: Workspace, storage: str | None) -> tuple[str, str]:
    """(study name, storage URL) from a study name or the HPO file that names it."""
    if ref.endswith((".yaml", ".yml")):
        spec = load_spec(ref)
        return spec.study_name(), storage_url(spec, workspace, storage)
    return ref, storage_url(None, workspace, storage)


def load_best(ref: str, workspace: Workspace, storage: str | None = None) -> BestParams:
    """The best parameters of a study (name or HPO file); refuses when it has none yet."""
    name, url = resolve_study(ref, workspace, storage)
    best = best_params(load_study(name, url))
    if best is None:
        raise StudyNotFoundError(f"study {name!r} has no complete, non-collapsed trial yet")
    return best
