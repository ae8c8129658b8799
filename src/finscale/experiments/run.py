"""Run a matrix: every study a pending final job needs, then the pending final jobs.

Finished identities (done, or collapsed and recorded) are skipped, so a second run of a
finished matrix starts nothing and a stopped one resumes where it was. Each job waits on
the thermal gate first. ``run_matrix`` decides what runs and in which order; a
``JobRunner`` runs one job (``LocalRunner`` in this process; the Prefect flow submits the
same jobs to the work pool instead).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from finscale.experiments.hpo_adapter import (
    DONE as STUDY_DONE,
)
from finscale.experiments.hpo_adapter import (
    StudyProgress,
    StudyStoppedError,
    run_study_job,
)
from finscale.experiments.matrix import Job, Matrix
from finscale.experiments.status import JobStatus, matrix_status, study_states
from finscale.workspace import Workspace

log = logging.getLogger(__name__)

THERMAL = "thermal"
MATRIX_TAG = "matrix"
MATRIX_JOB_TAG = "matrix_job"


@dataclass(frozen=True)
class JobOutcome:
    """What one job ended with: ``completed``, ``early_stopping``, ``thermal``, ..."""

    stop_reason: str
    run_id: str | None = None
    collapsed: bool = False


class JobRunner(Protocol):
    """Runs one study or one final training job (blocking) and says how it ended."""

    def gate(self, job: Job) -> None: ...

    def study(self, job: Job) -> StudyProgress: ...

    def final(self, job: Job) -> JobOutcome: ...


@dataclass
class RunReport:
    """What a ``run_matrix`` call did, by job id."""

    started: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    thermal: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


Progress = Callable[[str, Job, str], None]  # (event, job, detail): start, done, failed, ...


def _run_studies(matrix: Matrix, runner: JobRunner, studies: dict[str, StudyProgress],
                 report: RunReport, progress: Progress) -> None:
    """The studies that a not-yet-finished final job is waiting for."""
    needed = {job.study for job in matrix.final_jobs if job.study is not None}
    for sid, job in matrix.studies().items():
        if sid not in needed or studies[sid].state == STUDY_DONE:
            continue
        runner.gate(job)
        progress("start", job, f"study, {studies[sid].counted}/{job.trials} trials so far")
        report.started.append(sid)
        try:
            studies[sid] = runner.study(job)
        except StudyStoppedError as exc:
            report.thermal.append(sid)
            progress("stopped", job, str(exc))
            continue
        except Exception as exc:  # one failed study must not stop the others
            report.failed.append((sid, f"{type(exc).__name__}: {exc}"))
            progress("failed", job, f"{type(exc).__name__}: {exc}")
            continue
        progress("done", job, studies[sid].state)


def _run_final(status: JobStatus, runner: JobRunner, report: RunReport,
               progress: Progress) -> None:
    job = status.job
    runner.gate(job)
    progress("start", job, job.identity)
    report.started.append(job.id)
    try:
        outcome = runner.final(job)
    except Exception as exc:  # recorded; the other cells go on
        report.failed.append((job.id, f"{type(exc).__name__}: {exc}"))
        progress("failed", job, f"{type(exc).__name__}: {exc}")
        return
    if outcome.stop_reason == THERMAL:
        report.thermal.append(job.id)
    progress("done", job, outcome.stop_reason + (", collapsed" if outcome.collapsed else ""))


def run_matrix(matrix: Matrix, workspace: Workspace, runner: JobRunner,
               progress: Progress | None = None) -> RunReport:
    """Studies first (those a final job waits for), then every final job that has not
    finished; see the module docstring."""
    started = time.perf_counter()
    report = RunReport()
    tell = progress or (lambda event, job, detail: log.info("%s %s: %s", event, job.id, detail))
    studies = study_states(matrix, workspace)
    _run_studies(matrix, runner, studies, report, tell)
    for status in matrix_status(matrix, workspace, studies):
        if status.job.kind != "final":
            continue
        if status.finished:
            report.skipped.append(status.job.id)
        elif status.state == "waiting":
            report.waiting.append(status.job.id)
        else:
            _run_final(status, runner, report, tell)
    report.seconds = time.perf_counter() - started
    return report


class LocalRunner:
    """Jobs in this process: the thermal gate, the study's trials, ``train_run`` (a crash
    is retried once, resuming from the run's last checkpoint)."""

    def __init__(self, workspace: Workspace, gate_timeout_s: float) -> None:
        self.workspace = workspace
        self.gate_timeout_s = gate_timeout_s

    def gate(self, job: Job) -> None:
        from finscale.thermal.policy import ThermalPolicy, wait_until_safe
        from finscale.thermal.sensors import make_sensor

        thermal = job.config.thermal
        wait_until_safe(make_sensor(thermal), ThermalPolicy.from_config(thermal),
                        self.gate_timeout_s)

    def study(self, job: Job) -> StudyProgress:
        return run_study_job(job, self.workspace)

    def final(self, job: Job) -> JobOutcome:
        from finscale.training.checkpoint import LAST_NAME
        from finscale.training.run import RunHooks, train_run

        hooks = RunHooks(tags={MATRIX_TAG: job.matrix, MATRIX_JOB_TAG: job.id})
        try:
            result = train_run(job.config, self.workspace, hooks=hooks)
        except Exception as exc:
            last = self.workspace.checkpoints_dir / job.run_key.as_path() / LAST_NAME
            log.warning("%s crashed (%s); retrying once%s", job.id, exc,
                        ", resuming from its checkpoint" if last.is_file() else "")
            result = train_run(job.config, self.workspace, hooks=hooks,
                               resume=last.is_file())
        return JobOutcome(result.stop_reason, result.run_id, result.collapsed)
