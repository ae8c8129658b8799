"""MLflow tracking: the ONLY module of finscale that imports mlflow.

Default store: ``sqlite:///<workspace>/mlflow.db`` with artifacts in ``<workspace>/mlartifacts``
(the experiment is created with that artifact location). Each run carries the flattened
resolved config as params, its run key and input MD5s as tags, metrics per epoch, the
config YAML, the best checkpoint and the model with a signature.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pytorch
import numpy as np
import torch
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from finscale.config.redact import redact_text, redact_value
from finscale.io.locks import creation_lock
from finscale.training.run_key import RunKey
from finscale.workspace import TRACKING_URI_ENV, Workspace

log = logging.getLogger(__name__)

MAX_PARAM_CHARS = 6000
GIT_TIMEOUT_S = 5.0
UNKNOWN_SHA = "unknown"
MODEL_NAME = "model"
UI_PORT = 5000
MIN_EXAMPLE_BATCH = 2
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND_TRAINING = "custom_model_development"
STATUS_FINISHED = "FINISHED"
STATUS_FAILED = "FAILED"
STATUS_KILLED = "KILLED"
MODEL_TAG = "model"  # what produced a run's scores: the trained model or baseline-<name>
TRAINED_MODEL = "patchtst"  # the MODEL_TAG of training runs (the only runs that resume)


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go: tracking URI, experiment name and its artifact folder."""

    uri: str
    experiment: str
    artifact_location: Path

    @classmethod
    def for_workspace(
        cls, workspace: Workspace, experiment: str, uri: str | None = None
    ) -> TrackingTarget:
        return cls(workspace.tracking_uri(uri)[0], experiment, workspace.mlartifacts_dir)

    def ui_hint(self) -> str:
        """The command that serves this store's UI (artifacts from the workspace folder)."""
        # one worker and no job runner: the light single-process server (STACK-NOTES)
        return ("MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow server --host 127.0.0.1 "
                f"--port {UI_PORT} --workers 1 --backend-store-uri {redact_text(self.uri)} "
                f"--default-artifact-root {self.artifact_location}")

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The run's page in the UI that ``ui_hint`` starts."""
        return f"http://127.0.0.1:{UI_PORT}/#/experiments/{experiment_id}/runs/{run_id}"


def param_value(key: str, value: Any) -> str:
    """A param value as MLflow stores it: redacted, stringified, at most 6000 chars."""
    text = str(redact_value(key, value))
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 3] + "..."


def git_sha(cwd: Path | None = None) -> str:
    """HEAD of the checkout this code runs from, or ``unknown``."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN_SHA
    return done.stdout.strip() or UNKNOWN_SHA


def _ensure_experiment(target: TrackingTarget) -> str:
    """The experiment's id (created on first use), tagged as model training so the UI
    opens it on its training runs rather than the GenAI traces view (MLflow 3)."""
    client = MlflowClient(tracking_uri=target.uri)
    existing = client.get_experiment_by_name(target.experiment)
    if existing is not None:
        experiment_id = str(existing.experiment_id)
        if existing.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND_TRAINING:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG,
                                      EXPERIMENT_KIND_TRAINING)
        return experiment_id
    target.artifact_location.mkdir(parents=True, exist_ok=True)
    return str(client.create_experiment(
        target.experiment, artifact_location=target.artifact_location.resolve().as_uri(),
        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND_TRAINING},
    ))


def open_store(target: TrackingTarget) -> str:
    """The experiment's id, with MLflow's store and the experiment created under a lock.

    MLflow migrates an empty database the first time it opens it and creates the experiment
    on first use; two runs starting at once in a fresh workspace crashed one of them
    (``duplicate column name``, or the experiment already existing). ``creation_lock``
    serialises that first use across processes: a file lock beside a SQLite store, an
    advisory lock on PostgreSQL, none for a tracking server. MLflow keeps the opened store
    for this process's later clients.
    """
    with creation_lock(target.uri):
        return _ensure_experiment(target)


def _use_tracking_uri(uri: str) -> None:
    """Point MLflow's fluent API at ``uri`` without exporting it to the environment.

    ``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI`` for subprocesses, and
    finscale honours that variable when ``tracking.uri`` is unset: left exported, a run in
    another workspace later in this process (or a child process) would record into this
    store. The variable keeps the value the user gave it, or stays unset.
    """
    before = os.environ.get(TRACKING_URI_ENV)
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop(TRACKING_URI_ENV, None)
    else:
        os.environ[TRACKING_URI_ENV] = before


class RunTracker:
    """One MLflow run: ``start`` (new or continued), log, ``end``."""

    def __init__(self, target: TrackingTarget) -> None:
        self.target = target
        self.run_id: str | None = None
        self.experiment_id: str | None = None

    def start(
        self, run_key: RunKey, *, run_id: str | None = None, parent_run_id: str | None = None
    ) -> str:
        """Start a new run named by its key, or continue ``run_id`` (a resumed training).

        ``parent_run_id`` files the new run as a child (an HPO trial under its study's run);
        the parent is addressed by id, so it need not be this process's active run.
        """
        _use_tracking_uri(self.target.uri)
        self.experiment_id = open_store(self.target)
        if mlflow.active_run() is not None:
            mlflow.end_run()
        run = mlflow.start_run(
            run_id=run_id,
            experiment_id=None if run_id else self.experiment_id,
            run_name=None if run_id else run_key.as_tag(),
            parent_run_id=None if run_id else parent_run_id,
        )
        self.run_id = run.info.run_id
        mlflow.set_tags({**run_key.as_tags(), MODEL_TAG: TRAINED_MODEL})  # a training run
        return self.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params (redacted, each value <= 6000 chars); a resumed run skips ones already set."""
        client = MlflowClient(tracking_uri=self.target.uri)
        existing = client.get_run(self._id()).data.params
        fresh = {k: param_value(k, v) for k, v in params.items() if k not in existing}
        if fresh:
            mlflow.log_params(fresh)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        mlflow.set_tags({k: str(redact_value(k, v)) for k, v in tags.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Numeric metrics at ``step`` (NaN kept: an undefined AUC must stay visible)."""
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        mlflow.log_metrics(clean, step=step)

    def log_text(self, text: str, file_name: str) -> None:
        mlflow.log_text(text, file_name)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_model(self, model: torch.nn.Module, input_example: torch.Tensor) -> str:
        """The model with a signature inferred from an input example; returns its model URI.

        MLflow saves it with ``torch.export``, which fixes every dimension of size 1: the
        example needs at least ``MIN_EXAMPLE_BATCH`` samples so the batch stays dynamic.
        """
        if input_example.shape[0] < MIN_EXAMPLE_BATCH:
            raise ValueError(
                f"log_model needs an input example of >= {MIN_EXAMPLE_BATCH} samples, got "
                f"{input_example.shape[0]}: a batch of 1 would be exported as a fixed size"
            )
        model = model.eval()
        with torch.no_grad():
            output = model(input_example).float().cpu().numpy()
        example = input_example.cpu().numpy().astype(np.float32)
        signature = infer_signature(example, output)
        info = mlflow.pytorch.log_model(
            model,
            name=MODEL_NAME,
            signature=signature,
            input_example=example,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
        return str(info.model_uri)

    def end(self, status: str = STATUS_FINISHED) -> None:
        if mlflow.active_run() is not None:
            mlflow.end_run(status=status)

    def _id(self) -> str:
        if self.run_id is None:
            raise RuntimeError("RunTracker.start() was not called")
        return self.run_id


def find_finished_run(target: TrackingTarget, run_key: RunKey) -> str | None:
    """The id of a FINISHED training run with this key in the experiment, or None.

    Only runs tagged ``model=patchtst`` count: a baseline run logged with the same identity
    fields must never make a training identity look finished.
    """
    open_store(target)  # a training run's first use of the store
    client = MlflowClient(tracking_uri=target.uri)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.run_key = '{run_key.as_tag()}' and attributes.status = 'FINISHED' "
                      f"and tags.{MODEL_TAG} = '{TRAINED_MODEL}'",
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


@dataclass(frozen=True)
class RunRecord:
    """What MLflow holds of one run (for returning a finished run instead of retraining)."""

    run_id: str
    experiment_id: str
    status: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


def get_run_record(target: TrackingTarget, run_id: str) -> RunRecord:
    """The run's status, tags, params and latest metrics."""
    run = MlflowClient(tracking_uri=target.uri).get_run(run_id)
    return RunRecord(run.info.run_id, str(run.info.experiment_id), run.info.status,
                     dict(run.data.tags), dict(run.data.params), dict(run.data.metrics))


def release_abandoned_runs(target: TrackingTarget, run_key: RunKey, keep: str | None) -> list[str]:
    """Mark KILLED every RUNNING run of this identity except ``keep``; returns their ids.

    Called while holding the identity's lock: no live process can own such a run, so it was
    left RUNNING by a process that died (e.g. killed before its first checkpoint).
    """
    client = MlflowClient(tracking_uri=target.uri)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.run_key = '{run_key.as_tag()}' and attributes.status = 'RUNNING'",
    )
    released = [run.info.run_id for run in runs if run.info.run_id != keep]
    for run_id in released:
        client.set_tag(run_id, "stop_reason", "abandoned")
        client.set_terminated(run_id, STATUS_KILLED)
    return released


def run_metrics_history(target: TrackingTarget, run_id: str, key: str) -> list[float]:
    """Values of one metric in step order (for checks and reports)."""
    client = MlflowClient(tracking_uri=target.uri)
    history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
    return [m.value for m in history]


# ---------------------------------------------------------------- runs driven by id
# An HPO study has one parent run and a child run per trial (``finscale.hpo``); these
# address runs by id, so the process that started a run need not be the one that updates it.


def ensure_run(target: TrackingTarget, run_id: str | None, run_name: str,
               tags: Mapping[str, str]) -> str:
    """``run_id`` when that run still exists (not deleted), else a new RUNNING run."""
    client = MlflowClient(tracking_uri=target.uri)
    if run_id is not None:
        try:
            if client.get_run(run_id).info.lifecycle_stage == "active":
                return run_id
        except MlflowException:
            log.warning("run %s is gone from %s: starting a new one", run_id,
                        redact_text(target.uri))
    run = client.create_run(open_store(target), tags=_clean_tags(tags),
                            run_name=run_name)
    return str(run.info.run_id)


def record_child_run(target: TrackingTarget, parent_run_id: str, run_name: str,
                     tags: Mapping[str, str], status: str) -> str:
    """A child run that trained nothing (e.g. a trial refused before training), ended with
    ``status``: every trial of a study has its run under the parent in the UI."""
    client = MlflowClient(tracking_uri=target.uri)
    run = client.create_run(open_store(target), run_name=run_name,
                            tags={**_clean_tags(tags), MLFLOW_PARENT_RUN_ID: parent_run_id})
    client.set_terminated(run.info.run_id, status)
    return str(run.info.run_id)


def find_run_ids(target: TrackingTarget, tags: Mapping[str, str]) -> list[str]:
    """Ids of the experiment's runs carrying every one of ``tags`` (oldest first)."""
    return _tagged_run_ids(target, tags)


def _tagged_run_ids(target: TrackingTarget, tags: Mapping[str, str],
                    status: str | None = None) -> list[str]:
    """Ids of the runs carrying every one of ``tags`` (and ``status``), oldest first."""
    client = MlflowClient(tracking_uri=target.uri)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is None:
        return []
    if any("'" in str(value) for value in tags.values()):
        raise ValueError(f"tag values to search for must not contain quotes: {dict(tags)}")
    terms = [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
    if status is not None:
        terms.append(f"attributes.status = '{status}'")
    runs = client.search_runs([experiment.experiment_id], filter_string=" and ".join(terms),
                              order_by=["attributes.start_time ASC"])
    return [run.info.run_id for run in runs]


def update_run(target: TrackingTarget, run_id: str, *, tags: Mapping[str, Any] | None = None,
               metrics: Mapping[str, float] | None = None, step: int = 0,
               texts: Mapping[str, str] | None = None, status: str | None = None) -> None:
    """Set tags, log metrics at ``step`` and text artifacts (name -> text) on a run by id,
    then move it to ``status`` (RUNNING re-opens it; any other status ends it)."""
    client = MlflowClient(tracking_uri=target.uri)
    for key, value in _clean_tags(tags or {}).items():
        client.set_tag(run_id, key, value)
    for key, value in (metrics or {}).items():
        client.log_metric(run_id, key, float(value), step=step)
    for name, text in (texts or {}).items():
        client.log_text(run_id, text, name)
    if status == "RUNNING":
        client.update_run(run_id, status=status)
    elif status is not None:
        client.set_terminated(run_id, status)


def _clean_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {key: str(redact_value(key, value)) for key, value in tags.items()}


# ---------------------------------------------------------------- reading an experiment
# evaluation's results table reads every run of an experiment through this one function

SEARCH_PAGE_SIZE = 1000


def experiment_run_records(target: TrackingTarget) -> list[RunRecord]:
    """Every run of the experiment (oldest first) with status, tags, params and latest
    metrics, page by page; [] when the experiment does not exist."""
    client = MlflowClient(tracking_uri=target.uri)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is None:
        return []
    records: list[RunRecord] = []
    token: str | None = None
    while True:
        page = client.search_runs([experiment.experiment_id], max_results=SEARCH_PAGE_SIZE,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        records.extend(RunRecord(run.info.run_id, str(run.info.experiment_id), run.info.status,
                                 dict(run.data.tags), dict(run.data.params),
                                 dict(run.data.metrics)) for run in page)
        token = page.token
        if not token:
            return records


def runs_with_tag(target: TrackingTarget, tag: str, value: str
                  ) -> list[tuple[RunRecord, int | None, int | None]]:
    """Every run of the experiment whose tag ``tag`` equals ``value``, with its start and end
    time (ms since the epoch; None while unknown), page by page; [] without the experiment.
    The experiment matrix reads a phase's runs (``phase`` tag) through this one query."""
    client = MlflowClient(tracking_uri=target.uri)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is None:
        return []
    found: list[tuple[RunRecord, int | None, int | None]] = []
    token: str | None = None
    while True:
        page = client.search_runs([experiment.experiment_id], f"tags.`{tag}` = '{value}'",
                                  max_results=SEARCH_PAGE_SIZE, page_token=token)
        found.extend((RunRecord(run.info.run_id, str(run.info.experiment_id), run.info.status,
                                dict(run.data.tags), dict(run.data.params),
                                dict(run.data.metrics)), run.info.start_time, run.info.end_time)
                     for run in page)
        token = page.token
        if not token:
            return found


# ---------------------------------------------------------------- runs logged whole
# Baselines train nothing: their run is created, filled and ended in one call; the report is
# logged as artifacts of the experiment's parent run.

BATCH_PARAMS = 100  # MLflow takes at most 100 params (and 1000 metrics) per log_batch call


def log_finished_run(target: TrackingTarget, run_name: str, *, tags: Mapping[str, Any],
                     params: Mapping[str, Any], metrics: Mapping[str, float]) -> str:
    """A run that trained nothing, logged whole (metrics at step 0, NaN kept) and ended
    FINISHED; a crash on the way leaves it RUNNING, and no finished-check matches that."""
    client = MlflowClient(tracking_uri=target.uri)
    run_id = str(client.create_run(_ensure_experiment(target), tags=_clean_tags(tags),
                                   run_name=run_name).info.run_id)
    now = int(time.time() * 1000)
    values = [Metric(key, float(value), now, 0) for key, value in metrics.items()]
    texts = [Param(key, param_value(key, value)) for key, value in params.items()]
    for start in range(0, max(len(values), len(texts)), BATCH_PARAMS):
        client.log_batch(run_id, metrics=values[start:start + BATCH_PARAMS],
                         params=texts[start:start + BATCH_PARAMS])
    client.set_terminated(run_id, STATUS_FINISHED)
    return run_id


def finished_run_ids(target: TrackingTarget, tags: Mapping[str, str]) -> list[str]:
    """Ids of the FINISHED runs carrying every one of ``tags`` (oldest first)."""
    return _tagged_run_ids(target, tags, STATUS_FINISHED)


def log_folder(target: TrackingTarget, run_id: str, folder: Path, artifact_path: str) -> None:
    """Every file under ``folder`` as artifacts of ``run_id`` under ``artifact_path``."""
    MlflowClient(tracking_uri=target.uri).log_artifacts(run_id, str(folder), artifact_path)


# ---------------------------------------------------------------- the experiment's parent run
# One run per experiment (matrix) that holds what belongs to the whole experiment, such as
# its report; found by these two tags, so whoever comes first creates it and others reuse it.

EXPERIMENT_ROLE_TAG = "finscale.role"
EXPERIMENT_PARENT_ROLE = "experiment-parent"
EXPERIMENT_NAME_TAG = "finscale.experiment"


def experiment_exists(target: TrackingTarget) -> bool:
    """Whether the tracking store holds an experiment named ``target.experiment``."""
    client = MlflowClient(tracking_uri=target.uri)
    return client.get_experiment_by_name(target.experiment) is not None


def experiment_parent_run(target: TrackingTarget, name: str) -> str:
    """The id of experiment ``name``'s parent run in ``target`` (the oldest, if several
    were created at once), created FINISHED on first use: it trains nothing."""
    tags = {EXPERIMENT_ROLE_TAG: EXPERIMENT_PARENT_ROLE, EXPERIMENT_NAME_TAG: name}
    found = find_run_ids(target, tags)
    if found:
        return found[0]
    return log_finished_run(target, f"{name} (experiment)", tags=tags, params={}, metrics={})
