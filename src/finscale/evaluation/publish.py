"""``finscale report EXPERIMENT``: baselines, results table, report folder, MLflow.

An experiment is named by an MLflow experiment (all its runs), an experiment matrix (a
file, or a name under ``configs/experiments``: the runs of its phase, and its cells'
baselines are logged first) or a config file (the runs of its phase). The report is
rendered into a fresh folder that replaces ``<workspace>/reports/<name>`` only when
complete (no stale plot of an earlier report survives), then logged as artifacts of the
experiment's parent run.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from finscale.config.loader import load_config
from finscale.config.schema import AppConfig
from finscale.evaluation.config import EvaluationConfig
from finscale.evaluation.report import render_report
from finscale.evaluation.results import load_results, write_results
from finscale.evaluation.runner import BaselineOutcome, baseline_key, score_and_log_baselines
from finscale.tracking import TrackingTarget, experiment_exists, experiment_parent_run, log_folder
from finscale.workspace import Workspace

log = logging.getLogger(__name__)

MATRIX_DIR = Path("configs/experiments")  # where a bare matrix name is looked up
MATRIX_KEY = "axes"  # a YAML file with axes is an experiment matrix, else a config
REPORT_ARTIFACTS = "report"  # artifact folder of the report under the parent run
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._=+-]+")


class ReportError(ValueError):
    """An experiment that cannot be reported: unknown name, or no result to show."""


@dataclass(frozen=True)
class ReportSource:
    """Which runs one report reads, and whose baselines belong in it."""

    name: str
    experiment: str
    uri: str | None = None
    phase: str | None = None
    configs: tuple[AppConfig, ...] = ()
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)


@dataclass(frozen=True)
class PublishedReport:
    """What ``publish_report`` wrote and where MLflow holds it."""

    folder: Path
    index: Path
    images: tuple[Path, ...]
    rows: int
    skipped_runs: dict[str, int]
    parent_run_id: str
    baselines: tuple[BaselineOutcome, ...]


def _matrix_source(path: Path) -> ReportSource:
    from finscale.experiments.matrix import load_matrix  # only matrices need it

    matrix = load_matrix(path)
    if not matrix.final_jobs:
        raise ReportError(f"matrix {path} has no final runs to report")
    distinct = {baseline_key(job.config): job.config for job in matrix.final_jobs}
    first = matrix.final_jobs[0].config
    return ReportSource(name=matrix.spec.name, experiment=first.tracking.experiment,
                        uri=first.tracking.uri, phase=matrix.spec.phase,
                        configs=tuple(distinct.values()), evaluation=first.evaluation)


def _file_source(path: Path) -> ReportSource:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and MATRIX_KEY in data:
        return _matrix_source(path)
    config = load_config(path)
    return ReportSource(name=config.experiment.name, experiment=config.tracking.experiment,
                        uri=config.tracking.uri, phase=config.experiment.phase,
                        configs=(config,), evaluation=config.evaluation)


def resolve_source(experiment: str, config: AppConfig, workspace: Workspace) -> ReportSource:
    """A file (matrix or config), else an MLflow experiment of ``config``'s tracking store,
    else a matrix ``configs/experiments/<experiment>.yaml``; ``ReportError`` otherwise."""
    path = Path(experiment)
    if path.is_file():
        return _file_source(path)
    target = TrackingTarget.for_workspace(workspace, experiment, config.tracking.uri)
    if experiment_exists(target):
        return ReportSource(name=experiment, experiment=experiment, uri=config.tracking.uri,
                            evaluation=config.evaluation)
    matrix = MATRIX_DIR / f"{experiment}.yaml"
    if matrix.is_file():
        return _matrix_source(matrix)
    raise ReportError(f"{experiment!r} is no file, no MLflow experiment in "
                      f"{target.uri} and no matrix {matrix}")


def _replace_folder(staged: Path, folder: Path) -> None:
    """Put ``staged`` in ``folder``'s place (the old report goes only once the new is in)."""
    old = folder.with_name(f".{folder.name}.old-{time.time_ns()}")
    if folder.exists():
        folder.rename(old)
    staged.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def publish_report(workspace: Workspace, source: ReportSource, *, baselines: bool = True
                   ) -> PublishedReport:
    """Log the source's missing baselines (``baselines``), build the results table, render
    the report with the table beside it and log the folder under the parent run."""
    outcomes = tuple(score_and_log_baselines(c, workspace) for c in source.configs
                     if baselines)
    table = load_results(workspace, source.experiment, source.uri)
    frame = table.frame
    if source.phase is not None:
        frame = frame[frame["phase"] == source.phase]
    where = f"MLflow experiment {source.experiment!r}" + (
        f", phase {source.phase!r}" if source.phase is not None else "")
    if frame.empty:
        raise ReportError(f"{where}: no finished run with a scored test split to report "
                          f"(runs left out: {table.skipped_runs or 'none'})")
    name = UNSAFE_NAME.sub("_", source.name)
    folder = workspace.reports_dir / name
    staged = folder.with_name(f".{name}.new-{time.time_ns()}")
    try:
        write_results(frame, staged)
        files = render_report(frame, staged, source.evaluation)
        _replace_folder(staged, folder)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    target = TrackingTarget.for_workspace(workspace, source.experiment, source.uri)
    parent = experiment_parent_run(target, source.name)
    log_folder(target, parent, folder, REPORT_ARTIFACTS)
    log.info("report of %s (%d rows) in %s, logged under MLflow run %s", where, len(frame),
             folder, parent)
    return PublishedReport(folder=folder, index=folder / files.index.name,
                           images=tuple(folder / p.name for p in files.images), rows=len(frame),
                           skipped_runs=table.skipped_runs, parent_run_id=parent,
                           baselines=outcomes)


def report_experiment(experiment: str, config: AppConfig, workspace: Workspace, *,
                      baselines: bool = True) -> PublishedReport:
    """``resolve_source`` then ``publish_report``: what ``finscale report`` and the flow do."""
    return publish_report(workspace, resolve_source(experiment, config, workspace),
                          baselines=baselines)
