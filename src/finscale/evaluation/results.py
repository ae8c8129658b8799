"""The results table: one row per cell x seed x fold x model x target, from MLflow runs.

Rows come from FINISHED runs whose test split was scored (a trial or a run that withheld
its test split has no test result; such runs are counted, not tabled). A row carries the
run's identity (readable key fields, settings hash, run key), the model, its real
parameter count, the data MD5s and sample hashes, the flags ``collapsed`` (this target
collapsed in that run) and ``thermal_stopped``, and the test metrics of that target.
Collapsed and thermal-stopped rows stay in the table and are left out of fits
(``rows_for_fits``), which says how many it left out and why.

This module imports neither torch nor mlflow at import time (the report reads its schema);
``load_results`` reaches MLflow through ``finscale.tracking``.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from finscale.io.atomic import atomic_path
from finscale.thermal.policy import STOP_REASON_THERMAL
from finscale.workspace import Workspace

STATUS_FINISHED = "FINISHED"
DEFAULT_MODEL = "patchtst"  # runs without a ``model`` tag come from the PatchTST trainer
NO_TASKS = "none"  # how the trainer's task-list tags spell an empty list
TRUE_TEXT = ("true", "1")  # flags read back from CSV text
# tracking.EXPERIMENT_ROLE_TAG (not imported: tracking loads torch and mlflow): a run with a
# role (the experiment's parent) holds no results of its own
ROLE_TAG = "finscale.role"
KEY_FIELDS = ("phase", "tickers", "timescale", "tier", "horizon", "budget", "task", "seed",
              "settings", "fold")
INT_COLUMNS = ("horizon", "seed", "fold", "n_parameters")
IDENTITY_COLUMNS = ("experiment", "run_id", "run_key", "run_identity", *KEY_FIELDS, "model",
                    "target")
FACT_COLUMNS = ("n_parameters", "dataset_md5", "input_md5s", "sample_hash_val",
                "sample_hash_test", "stop_reason", "collapsed", "thermal_stopped")
# result column -> MLflow metric names (``{t}`` = target), first present wins; the trainer
# logs ``test_auc_<t>``, evaluation's ``TaskMetrics.flat`` logs ``test_roc_auc_<t>``
METRIC_SOURCES: Mapping[str, tuple[str, ...]] = {
    "test_auc": ("test_roc_auc_{t}", "test_auc_{t}"),
    "test_auc_se": ("test_roc_auc_se_{t}",),
    "test_pr_auc": ("test_pr_auc_{t}",),
    "test_log_loss": ("test_log_loss_{t}",),
    "test_log_loss_se": ("test_log_loss_se_{t}",),
    "test_brier": ("test_brier_{t}",),
    "test_base_log_loss": ("test_base_log_loss_{t}",),
    "test_skill": ("test_skill_{t}",),
    "test_skill_se": ("test_skill_se_{t}",),
    "test_brier_skill": ("test_brier_skill_{t}",),
    "test_precision": ("test_precision_{t}",),
    "test_recall": ("test_recall_{t}",),
    "test_f1": ("test_f1_{t}",),
    "test_balanced_accuracy": ("test_balanced_accuracy_{t}",),
    "test_positive_calls": ("test_positive_calls_{t}",),
    "test_positives": ("test_positives_{t}",),
    "test_samples": ("test_samples_{t}",),
    "val_auc": ("val_roc_auc_{t}", "best_val_auc_{t}", "val_auc_{t}"),
}
RELIABILITY_COLUMN = "test_reliability"  # JSON list of {bin, mean_predicted, observed_rate, count}
RESULT_COLUMNS = (*IDENTITY_COLUMNS, *FACT_COLUMNS, *METRIC_SOURCES, RELIABILITY_COLUMN)
TARGET_PARAM = re.compile(r"^split\.val\.positives\.(.+)$")
RELIABILITY_METRIC = re.compile(r"^test_rel_(pred|obs|n)_(\d+)_(.+)$")
RELIABILITY_NAMES = {"pred": "mean_predicted", "obs": "observed_rate", "n": "count"}


class ResultsSchemaError(ValueError):
    """A results table that lacks columns the evaluation needs."""


class RunLike(Protocol):
    """What a results row reads of a run (``tracking.RunRecord`` has it)."""

    run_id: str
    status: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class ResultsTable:
    """The table plus the runs that gave no row, counted by reason."""

    frame: pd.DataFrame
    skipped_runs: dict[str, int] = field(default_factory=dict)


def _targets(run: RunLike) -> list[str]:
    """The run's task columns: from its validation count params, else its test AUC keys."""
    found = [m.group(1) for key in run.params if (m := TARGET_PARAM.match(key))]
    if not found:
        found = [key.removeprefix("test_roc_auc_") for key in run.metrics
                 if key.startswith("test_roc_auc_") and not key.startswith("test_roc_auc_se_")]
    return sorted(found)


def _int_or_none(value: str | None) -> int | None:
    if value is None or value in ("", "None"):
        return None
    return int(float(value))


def _reliability(metrics: Mapping[str, float], target: str) -> str:
    bins: dict[int, dict[str, float]] = {}
    for key, value in metrics.items():
        match = RELIABILITY_METRIC.match(key)
        if match and match.group(3) == target:
            bins.setdefault(int(match.group(2)), {})[RELIABILITY_NAMES[match.group(1)]] = value
    return json.dumps([{"bin": b, **bins[b]} for b in sorted(bins)]) if bins else ""


def _collapsed(tags: Mapping[str, str], target: str) -> bool:
    listed = tags.get("collapsed_tasks")
    if listed is not None:
        return listed != NO_TASKS and target in listed.split(",")
    return tags.get("collapsed", "false") == "true"


def _row(run: RunLike, target: str, experiment: str) -> dict[str, object]:
    tags = run.tags
    row: dict[str, object] = {
        "experiment": experiment, "run_id": run.run_id, "run_key": tags.get("run_key", ""),
        "run_identity": tags.get("run_identity", tags.get("run_key", "")),
        **{name: tags.get(name) for name in KEY_FIELDS},
        "model": tags.get("model", DEFAULT_MODEL), "target": target,
        "n_parameters": run.params.get("n_parameters"),
        **{name: tags.get(name, "") for name in ("dataset_md5", "input_md5s",
                                                 "sample_hash_val", "sample_hash_test",
                                                 "stop_reason")},
        "collapsed": _collapsed(tags, target),
        "thermal_stopped": tags.get("stop_reason") == STOP_REASON_THERMAL,
    }
    for column, sources in METRIC_SOURCES.items():
        keys = [s.format(t=target) for s in sources if s.format(t=target) in run.metrics]
        row[column] = run.metrics[keys[0]] if keys else math.nan
    row[RELIABILITY_COLUMN] = _reliability(run.metrics, target)
    return row


def results_from_runs(runs: Iterable[RunLike], experiment: str) -> ResultsTable:
    """Rows of every finished run with a scored test split; the others counted by reason."""
    rows: list[dict[str, object]] = []
    skipped: Counter[str] = Counter()
    for run in runs:
        if role := run.tags.get(ROLE_TAG):
            skipped[f"{role} run"] += 1
        elif run.status != STATUS_FINISHED:
            skipped[f"status {run.status}"] += 1
        elif run.tags.get("test_split") == "withheld":
            skipped["test split withheld (selection run)"] += 1
        elif not (targets := _targets(run)):
            skipped["no task metrics"] += 1
        else:
            rows.extend(_row(run, target, experiment) for target in targets)
    return ResultsTable(frame=typed(pd.DataFrame(rows, columns=list(RESULT_COLUMNS))),
                        skipped_runs=dict(skipped))


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Column types of the schema: nullable integers, booleans, floats, strings."""
    require_columns(frame, RESULT_COLUMNS)
    out = frame.copy()
    for column in INT_COLUMNS:
        out[column] = pd.array([_int_or_none(None if pd.isna(v) else str(v))
                                for v in out[column]], dtype="Int64")
    for column in ("collapsed", "thermal_stopped"):
        out[column] = [str(v).strip().lower() in TRUE_TEXT for v in out[column]]
    for column in METRIC_SOURCES:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    text = [c for c in RESULT_COLUMNS if c not in (*INT_COLUMNS, "collapsed",
                                                   "thermal_stopped", *METRIC_SOURCES)]
    out[text] = out[text].fillna("").astype(str)
    return out[list(RESULT_COLUMNS)]


def require_columns(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise ``ResultsSchemaError`` naming every missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ResultsSchemaError(f"results table lacks columns {missing}")


@dataclass(frozen=True)
class FitRows:
    """Rows a fit may use, and how many it left out by reason."""

    frame: pd.DataFrame
    excluded: dict[str, int]


def rows_for_fits(frame: pd.DataFrame, metric: str) -> FitRows:
    """Leave out collapsed and thermal-stopped rows and rows without ``metric``; count each."""
    require_columns(frame, ("collapsed", "thermal_stopped", metric))
    reasons = {
        "collapsed": frame["collapsed"].astype(bool),
        "thermal-stopped": frame["thermal_stopped"].astype(bool),
        f"no {metric}": frame[metric].isna(),
    }
    keep = pd.Series(True, index=frame.index)
    excluded: dict[str, int] = {}
    for reason, mask in reasons.items():
        hit = keep & mask
        if hit.any():
            excluded[reason] = int(hit.sum())
        keep &= ~mask
    return FitRows(frame=frame[keep], excluded=excluded)


def write_results(table: pd.DataFrame, directory: Path, stem: str = "results"
                  ) -> tuple[Path, Path]:
    """The table as ``<stem>.parquet`` and ``<stem>.csv``, each written atomically."""
    typed_table = typed(table)
    directory.mkdir(parents=True, exist_ok=True)
    parquet, csv = directory / f"{stem}.parquet", directory / f"{stem}.csv"
    with atomic_path(parquet) as tmp:
        typed_table.to_parquet(tmp, engine="pyarrow", index=False)
    with atomic_path(csv) as tmp:
        typed_table.to_csv(tmp, index=False)
    return parquet, csv


def read_results(path: Path) -> pd.DataFrame:
    """A results table from Parquet or CSV, typed and schema-checked."""
    if path.suffix == ".parquet":
        return typed(pd.read_parquet(path, engine="pyarrow"))
    return typed(pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]))


def load_results(workspace: Workspace, experiment: str, uri: str | None = None
                 ) -> ResultsTable:
    """The results table of an MLflow experiment (the workspace's store unless ``uri``)."""
    # imported here: tracking imports torch and mlflow, and the report reads this module
    from finscale.tracking import TrackingTarget, experiment_run_records

    target = TrackingTarget.for_workspace(workspace, experiment, uri)
    return results_from_runs(experiment_run_records(target), experiment)
