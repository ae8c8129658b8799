"""The one entry point of a training run: data -> budget check -> train -> MLflow.

``train_run`` builds (or reuses) the dataset, refuses tiny splits, resolves the
architecture and refuses a model whose real parameter count misses its named budget,
trains behind the thermal guard, and records everything in MLflow.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finscale.config.loader import config_hash, config_to_dict, config_to_yaml, flatten
from finscale.config.redact import redact_text
from finscale.config.schema import AppConfig
from finscale.datasets.build import build_dataset
from finscale.datasets.load import DatasetSplits, open_splits
from finscale.datasets.splits import check_min_samples
from finscale.datasets.windows import WindowedDataset
from finscale.evaluation.final import final_scored_metrics
from finscale.manifest.store import Manifest
from finscale.models.budget import count_parameters, resolve_architecture
from finscale.models.patchtst import PatchTST, PatchTSTConfig
from finscale.thermal.policy import ThermalGuard, ThermalPolicy
from finscale.thermal.sensors import NoneSensor, make_sensor
from finscale.tracking import (
    MIN_EXAMPLE_BATCH,
    STATUS_FAILED,
    STATUS_FINISHED,
    STATUS_KILLED,
    TRAINED_MODEL,
    RunTracker,
    TrackingTarget,
    find_finished_run,
    get_run_record,
    git_sha,
    release_abandoned_runs,
)
from finscale.training.batch_size import BatchKey, make_try_step, resolve_batch_size
from finscale.training.checkpoint import BEST_NAME, LAST_NAME, CheckpointError, load_checkpoint
from finscale.training.device import DeviceChoice, resolve_device
from finscale.training.metrics import (
    NO_TASKS,
    TaskCounts,
    collapsed_tasks,
    count_params,
    excluded_tasks,
    probabilities,
    require_usable_tasks,
    usable_tasks,
)
from finscale.training.run_key import RunKey
from finscale.training.run_lock import run_identity_lock
from finscale.training.trainer import (
    EpochHook,
    FitResult,
    Trainer,
    seed_everything,
    split_task_counts,
)
from finscale.workspace import Workspace

log = logging.getLogger(__name__)

RUN_ID_EXTRA = "mlflow_run_id"
CONFIG_ARTIFACT = "config.yaml"
SPLIT_REPORT_ARTIFACT = "split_report.json"
LABEL_COUNT_BATCH = 8192


@dataclass(frozen=True)
class TrainResult:
    """What a run produced (small: passed between Prefect tasks)."""

    run_id: str
    run_key: str
    best_metric: float | None
    metric_name: str
    stop_reason: str
    checkpoint_path: str
    n_parameters: int
    tracking_uri: str
    collapsed: bool
    device: str
    seconds: float
    experiment_id: str = ""
    excluded_tasks: tuple[str, ...] = ()  # left out of the mean val AUC (too few counts)
    reused: bool = False  # the identity had already finished: nothing was trained


@dataclass(frozen=True)
class RunHooks:
    """What a caller that drives many runs (HPO, the experiment flow) adds to one run:
    epoch hooks (a returned reason such as ``pruned`` stops it), a parent MLflow run and
    extra tags. The library's training knows nothing of the caller."""

    epoch_hooks: Sequence[EpochHook] = ()
    parent_run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Data:
    splits: DatasetSplits
    tags: dict[str, str]
    val_counts: dict[str, TaskCounts]
    test_counts: dict[str, TaskCounts] | None  # None: test split withheld (evaluate_test off)


@dataclass(frozen=True)
class _RunPlan:
    """A run's inputs, resolved before MLflow is touched (so a refusal leaves no run)."""

    key: RunKey
    data: _Data
    model: PatchTST
    arch: PatchTSTConfig
    n_params: int
    device: DeviceChoice
    guard: ThermalGuard
    batch_size: int
    checkpoint_dir: Path


def _open_data(config: AppConfig, manifest: Manifest, workspace: Workspace) -> _Data:
    record = build_dataset(manifest, workspace, config)
    splits = open_splits(manifest, record, include_test=config.training.evaluate_test)
    # checked again here: a dataset built earlier is reused, and this run's floor may be higher
    check_min_samples(splits.report, config.dataset.splits.min_samples, f"dataset {record.name}")
    parents = [manifest.get(pid) for pid in record.parent_ids]
    tags = {
        "dataset": record.name,
        "dataset_version": str(record.version),
        "dataset_md5": record.md5,
        "input_md5s": ",".join(f"{p.name}:{p.md5}" for p in parents),
        "sample_hash_train": splits.train.sample_hash,
        "sample_hash_val": splits.val.sample_hash,
        "test_split": "scored" if splits.has_test else "withheld",
    }
    if splits.has_test:
        tags["sample_hash_test"] = splits.test.sample_hash
    for stats in splits.report.splits:
        positives = ", ".join(f"{t}={n}" for t, n in stats.positives.items())
        log.info("split %s: %d samples (%s .. %s), positives %s", stats.name, stats.samples,
                 stats.range_start, stats.range_end, positives)
    task_names = splits.train.task_names
    val_counts = split_task_counts(splits.val, task_names, LABEL_COUNT_BATCH)
    # before any model or MLflow run: a val split where every task is noise gives no result
    require_usable_tasks(val_counts, config.training.min_task_positives,
                         f"dataset {record.name} val")
    test_counts = (split_task_counts(splits.test, task_names, LABEL_COUNT_BATCH)
                   if splits.has_test else None)
    return _Data(splits=splits, tags=tags, val_counts=val_counts, test_counts=test_counts)


def _task_list(tasks: tuple[str, ...]) -> str:
    return ",".join(tasks) if tasks else NO_TASKS


def task_selection_tags(data: _Data, min_task_positives: int) -> dict[str, str]:
    """Which tasks the mean val AUC (and the mean test AUC: the same tasks) averages and
    which it leaves out (too few validation counts); ``thin_tasks_test`` names the tasks
    whose test counts are below the floor (their test AUC is noisy: read with its counts)."""
    tags = {
        "included_tasks": _task_list(usable_tasks(data.val_counts, min_task_positives)),
        "excluded_tasks": _task_list(excluded_tasks(data.val_counts, min_task_positives)),
    }
    if data.test_counts is not None:
        tags["thin_tasks_test"] = _task_list(excluded_tasks(data.test_counts, min_task_positives))
    return tags


def task_count_params(data: _Data) -> dict[str, float | int]:
    """Class counts and positive rate per task of val and test (constant for a run: params)."""
    test = count_params(data.test_counts, "test") if data.test_counts is not None else {}
    return {**count_params(data.val_counts, "val"), **test}


def _build_model(config: AppConfig, splits: DatasetSplits) -> tuple[PatchTST, PatchTSTConfig, int]:
    """Resolve the architecture (which checks the real count against the budget), build it
    seeded and confirm the built model has the counted parameters."""
    arch = resolve_architecture(
        config.model, splits.train.n_features, splits.train.context, splits.train.n_tasks
    )
    n_params = count_parameters(arch)
    seed_everything(config.training.seed)
    model = PatchTST(arch)
    real = sum(p.numel() for p in model.parameters())
    if real != n_params:
        raise RuntimeError(f"built model has {real} parameters, meta count said {n_params}")
    return model, arch, n_params


def _batch_size(
    config: AppConfig,
    workspace: Workspace,
    model: PatchTST,
    arch: PatchTSTConfig,
    device: DeviceChoice,
) -> int:
    key = BatchKey(  # the resolved shape too: channel mode or patching change the memory
        budget=f"{config.model.budget or 'explicit'}:d{arch.d_model}l{arch.n_layers}"
               f"{arch.channel_mode}p{arch.patch_len}s{arch.stride}{arch.head}",
        input_shape=(arch.context, arch.n_features, arch.n_tasks),
        device=device.label,
    )
    try_step = None
    if device.name != "cpu":
        model.to(device.device)
        try_step = make_try_step(model, torch.nn.BCEWithLogitsLoss(), (arch.context,
                                 arch.n_features), arch.n_tasks, device.device, device.autocast)
    return resolve_batch_size(config.training, key, workspace.cache_dir, try_step)


def _previous_run_id(checkpoint_dir: Path, resume: bool) -> str | None:
    """The MLflow run a resumed training continues; a fresh run archives old checkpoints."""
    last = checkpoint_dir / LAST_NAME
    if resume and not last.is_file():
        # asked to continue, nothing to continue: starting over silently would hide it
        raise CheckpointError(
            f"nothing to resume: no checkpoint at {last}; run without --resume to start fresh"
        )
    if resume:
        return load_checkpoint(last)["extra"].get(RUN_ID_EXTRA)
    if checkpoint_dir.is_dir() and any(checkpoint_dir.iterdir()):
        archived = checkpoint_dir.with_name(f"{checkpoint_dir.name}-replaced-{time.time_ns()}")
        checkpoint_dir.rename(archived)
        log.info("fresh run: previous checkpoints kept in %s", archived)
    return None


def _start_tracking(
    config: AppConfig, tracker: RunTracker, key: RunKey, run_id: str | None,
    facts: dict[str, Any], hooks: RunHooks,
) -> str:
    run_id = tracker.start(key, run_id=run_id, parent_run_id=hooks.parent_run_id)
    tracker.set_tags(dict(hooks.tags))
    tracker.log_params({**flatten(config_to_dict(config)), **facts})
    tracker.set_tags({"config_hash": config_hash(config)})
    tracker.log_text(config_to_yaml(config), CONFIG_ARTIFACT)
    return run_id


def last_epochs_mean(history: list[dict[str, float]], metric: str, window: int) -> float:
    """``metric`` averaged over the last ``window`` epochs: unlike the best-epoch value it is
    not selected on the validation split, so it does not carry the selection bias."""
    values = [epoch[metric] for epoch in history[-window:] if metric in epoch]
    return float(sum(values) / len(values)) if values else math.nan


def collapse_tags(config: AppConfig, metrics: dict[str, float], tasks: tuple[str, ...]) -> dict:
    """``collapsed`` (any included task collapsed, judged per task) and which ones."""
    cfg = config.training
    collapsed = collapsed_tasks(metrics, "val_", tasks, cfg.collapse_std_floor,
                                cfg.collapse_min_distinct)
    return {"collapsed": str(bool(collapsed)).lower(), "collapsed_tasks": _task_list(collapsed)}


def _finish(
    config: AppConfig, tracker: RunTracker, trainer: Trainer, fit: FitResult, data: _Data
) -> bool:
    """Test metrics of the BEST model (final runs only), per-task collapse tags, the
    last-epochs val mean beside the best-epoch one, checkpoint and model artifacts."""
    test = {}
    if data.splits.has_test:
        test = best_checkpoint_scores(config, trainer, data.splits)
        test.update(trainer.evaluate(data.splits.test, "test_"))  # test_auc*: others read it
    final = {f"best_{k}": v for k, v in fit.final_metrics.items()}
    window = config.training.last_epochs_window
    final[f"val_auc_last{window}_mean"] = last_epochs_mean(fit.progress.history, "val_auc",
                                                           window)
    tracker.log_metrics({**final, **test}, step=fit.progress.epoch)
    tags = collapse_tags(config, fit.final_metrics, trainer.included_tasks)
    tracker.set_tags({**tags, "best_epoch": fit.progress.best_epoch})
    collapsed = tags["collapsed"] == "true"
    if fit.best_checkpoint is not None:
        tracker.log_artifact(fit.best_checkpoint, "checkpoints")
    example = data.splits.val.batch(torch.arange(MIN_EXAMPLE_BATCH))[0].to(trainer.device.device)
    log_best_model(config, tracker, trainer.model, example)
    return collapsed


def best_checkpoint_scores(
    config: AppConfig, trainer: Trainer, splits: DatasetSplits
) -> dict[str, float]:
    """Every task's scored metrics on val and test (``evaluation.final``) from the BEST
    checkpoint, reloaded here whatever state the model is in, so no later epoch can report;
    splits opened without their test split (a trial) raise ``WithheldSplitError``."""
    _ = splits.test  # a trial refuses before the checkpoint is read
    trainer.load_best()

    def predict(dataset: WindowedDataset) -> np.ndarray:
        return probabilities(trainer.predict(dataset)[0]).numpy()

    return final_scored_metrics(splits, predict, horizon=config.dataset.horizon,
                                config=config.evaluation, predictor=TRAINED_MODEL)


def log_best_model(
    config: AppConfig, tracker: RunTracker, model: torch.nn.Module, example: torch.Tensor
) -> str | None:
    """Log the (best, already reloaded) model with a signature unless ``log_model`` is off."""
    if not config.training.log_model:
        return None
    return tracker.log_model(model, example)


def build_thermal_guard(config: AppConfig) -> ThermalGuard:
    """The in-training guard: configured sensor and limits, checked every N optimiser steps."""
    return ThermalGuard(make_sensor(config.thermal), ThermalPolicy.from_config(config.thermal),
                        every_steps=config.training.thermal_check_every_steps)


def thermal_tags(guard: ThermalGuard) -> dict[str, str]:
    """Which sensor watched the run; with ``none`` no temperature metric exists, say so."""
    name = guard.sensor.name
    status = "disabled" if name == NoneSensor.name else "monitored"
    return {"thermal_sensor": name, "thermal_status": status}


def epoch_temperature(guard: ThermalGuard) -> float | None:
    """°C for the per-epoch metric; None (metric omitted) for pressure levels, none, unknown."""
    return guard.read().celsius


def _train_and_track(
    config: AppConfig, plan: _RunPlan, tracker: RunTracker, run_id: str, resume: bool,
    hooks: RunHooks,
) -> tuple[FitResult, bool]:
    """Fit behind the thermal guard, logging each epoch; finish (test, tags, model) if done."""
    trainer = Trainer(
        plan.model, plan.data.splits.train, plan.data.splits.val, config.training,
        checkpoint_dir=plan.checkpoint_dir, config_yaml=config_to_yaml(config),
        task_names=plan.data.splits.train.task_names, device=plan.device,
        batch_size=plan.batch_size, step_hooks=[plan.guard],
        epoch_hooks=[lambda m: tracker.log_metrics(m, int(m["epoch"])), *hooks.epoch_hooks],
        temperature_fn=lambda: epoch_temperature(plan.guard),
        checkpoint_extra={RUN_ID_EXTRA: run_id, "run_key": plan.key.as_tag()},
        val_counts=plan.data.val_counts,
    )
    fit = trainer.fit(resume=resume)
    tracker.set_tags({"stop_reason": fit.stop_reason})
    collapsed = _finish(config, tracker, trainer, fit, plan.data) if fit.finished else False
    return fit, collapsed


def _plan(config: AppConfig, workspace: Workspace) -> _RunPlan:
    """Everything decided before MLflow is touched: data, model, device, guard, batch size."""
    key = RunKey.from_config(config)
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        data = _open_data(config, manifest, workspace)
    finally:
        manifest.close()
    model, arch, n_params = _build_model(config, data.splits)
    # with cpu_autocast here (the trainer applies it too), the logged autocast_dtype and the
    # batch-size search see the precision the run trains in
    device = resolve_device(config.training.device, cpu_autocast=config.training.cpu_autocast)
    guard = build_thermal_guard(config)
    batch_size = _batch_size(config, workspace, model, arch, device)
    return _RunPlan(key=key, data=data, model=model, arch=arch, n_params=n_params,
                    device=device, guard=guard, batch_size=batch_size,
                    checkpoint_dir=workspace.checkpoints_dir / key.as_path())


def train_run(
    config: AppConfig, workspace: Workspace, *, resume: bool = False,
    hooks: RunHooks | None = None, retrain: bool = False,
) -> TrainResult:
    """Train one run described by ``config`` in ``workspace``; see the module docstring.

    One writer per identity: the identity's lock is held from the finished-check to the
    end. An identity that already FINISHED in MLflow is not trained again (a retried flow
    run or a ``--resume`` of a finished run returns it, ``reused=True``) unless ``retrain``;
    RUNNING runs of the identity left by dead processes are marked KILLED first.
    """
    started = time.perf_counter()
    workspace.ensure()
    plan = _plan(config, workspace)
    target = TrackingTarget.for_workspace(workspace, config.tracking.experiment,
                                          config.tracking.uri)
    lock_path = workspace.locks_dir / f"{plan.key.as_path()}.lock"
    with run_identity_lock(lock_path, plan.key.as_tag(), workspace.manifest_url):
        finished = None if retrain else find_finished_run(target, plan.key)
        if finished is not None:
            log.info("run %s already finished as MLflow run %s: not trained again",
                     plan.key.as_tag(), finished)
            return _reused_result(config, plan, target, finished)
        previous = _previous_run_id(plan.checkpoint_dir, resume)
        released = release_abandoned_runs(target, plan.key, keep=previous)
        if released:
            log.warning("marked abandoned RUNNING runs of %s as KILLED: %s", plan.key.as_tag(),
                        ", ".join(released))
        return _tracked_run(config, plan, target, previous, resume, hooks or RunHooks(),
                            started)


def _tracked_run(
    config: AppConfig, plan: _RunPlan, target: TrackingTarget, previous: str | None,
    resume: bool, hooks: RunHooks, started: float,
) -> TrainResult:
    """Start (or continue) the MLflow run, train, end the run with its status."""
    tracker = RunTracker(target)
    arch = plan.arch
    facts = {"n_parameters": plan.n_params, "device": plan.device.name, "git_sha": git_sha(),
             "resolved_batch_size": plan.batch_size, "d_model": arch.d_model,
             "n_layers": arch.n_layers, "n_heads": arch.n_heads, "d_ff": arch.d_ff,
             "n_features": arch.n_features, "n_tasks": arch.n_tasks, "context": arch.context,
             "autocast_dtype": str(plan.device.autocast_dtype or torch.float32)}
    run_id = _start_tracking(config, tracker, plan.key, previous, facts, hooks)
    tracker.log_params(task_count_params(plan.data))
    tracker.set_tags({**plan.data.tags, **thermal_tags(plan.guard),
                      **task_selection_tags(plan.data, config.training.min_task_positives)})
    tracker.log_text(_split_report_json(plan.data), SPLIT_REPORT_ARTIFACT)
    try:
        fit, collapsed = _train_and_track(config, plan, tracker, run_id, resume, hooks)
    except BaseException:
        tracker.set_tags({"stop_reason": "error"})
        tracker.end(STATUS_FAILED)
        raise
    tracker.end(STATUS_FINISHED if fit.finished else STATUS_KILLED)
    return TrainResult(
        run_id=run_id, run_key=plan.key.as_tag(), best_metric=fit.progress.best_metric,
        metric_name=config.training.early_stopping_metric, stop_reason=fit.stop_reason,
        checkpoint_path=str(fit.best_checkpoint or fit.last_checkpoint),
        n_parameters=plan.n_params, tracking_uri=redact_text(target.uri), collapsed=collapsed,
        device=plan.device.name, seconds=time.perf_counter() - started,
        experiment_id=tracker.experiment_id or "",
        excluded_tasks=excluded_tasks(plan.data.val_counts, config.training.min_task_positives),
    )


def _reused_result(
    config: AppConfig, plan: _RunPlan, target: TrackingTarget, run_id: str
) -> TrainResult:
    """The TrainResult of an identity's FINISHED MLflow run, read back from MLflow."""
    record = get_run_record(target, run_id)
    metric = config.training.early_stopping_metric
    excluded = record.tags.get("excluded_tasks", NO_TASKS)
    return TrainResult(
        run_id=run_id, run_key=plan.key.as_tag(),
        best_metric=record.metrics.get(f"best_{metric}"), metric_name=metric,
        stop_reason=record.tags.get("stop_reason", "unknown"),
        checkpoint_path=str(plan.checkpoint_dir / BEST_NAME),
        n_parameters=int(record.params.get("n_parameters", plan.n_params)),
        tracking_uri=redact_text(target.uri), collapsed=record.tags.get("collapsed") == "true",
        device=record.params.get("device", plan.device.name), seconds=0.0,
        experiment_id=record.experiment_id,
        excluded_tasks=() if excluded == NO_TASKS else tuple(excluded.split(",")),
        reused=True,
    )


def _split_report_json(data: _Data) -> str:
    return json.dumps(data.splits.report.to_dict(), indent=2, default=str)
