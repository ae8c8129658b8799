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
from collections.abc import Callable, Mapping
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
from finscale.experiments.matrix import FINAL, Job, Matrix
from finscale.experiments.status import WAITING, matrix_status, study_states
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


def studies_to_run(matrix: Matrix, studies: Mapping[str, StudyProgress]) -> list[Job]:
    """The studies a final job uses that are not done yet (in matrix order)."""
    needed = {job.study for job in matrix.final_jobs if job.study is not None}
    return [job for sid, job in matrix.studies().items()
            if sid in needed and studies[sid].state != STUDY_DONE]


def finals_by_state(matrix: Matrix, workspace: Workspace,
                    studies: Mapping[str, StudyProgress]) -> tuple[list[Job], list[str], list[str]]:
    """(final jobs to run, resolved; ids already finished; ids waiting for a study)."""
    to_run, finished, waiting = [], [], []
    for status in matrix_status(matrix, workspace, studies):
        if status.job.kind != FINAL:
            continue
        if status.finished:
            finished.append(status.job.id)
        elif status.state == WAITING:
            waiting.append(status.job.id)
        else:
            to_run.append(status.job)
    return to_run, finished, waiting


def find_job(matrix: Matrix, job_id: str) -> Job:
    """A job of the matrix by its id (a study: own or reused)."""
    for job in matrix.jobs():
        if job.id == job_id:
            return job
    raise KeyError(f"matrix {matrix.name} has no job {job_id!r}")


def matrix_workspace(matrix: Matrix, home: str | None) -> Workspace:
    """The workspace the matrix's jobs write to (``home`` wins over the base config's)."""
    cfg = matrix.final_jobs[0].config.workspace
    return Workspace.resolve(home or cfg.home, manifest_url=cfg.manifest_url).ensure()


def resume_possible(job: Job, workspace: Workspace) -> bool:
    """Whether the job's identity has a last checkpoint to continue from."""
    from finscale.training.checkpoint import LAST_NAME

    return (workspace.checkpoints_dir / job.run_key.as_path() / LAST_NAME).is_file()


def _run_studies(matrix: Matrix, runner: JobRunner, studies: dict[str, StudyProgress],
                 report: RunReport, progress: Progress) -> None:
    """The studies that a not-yet-finished final job is waiting for."""
    for job in studies_to_run(matrix, studies):
        sid = job.id
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


def _run_final(job: Job, runner: JobRunner, report: RunReport, progress: Progress) -> None:
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
    to_run, report.skipped, report.waiting = finals_by_state(matrix, workspace, studies)
    for job in to_run:
        _run_final(job, runner, report, tell)
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
        from finscale.training.run import RunHooks, train_run

        hooks = RunHooks(tags={MATRIX_TAG: job.matrix, MATRIX_JOB_TAG: job.id})
        try:
            result = train_run(job.config, self.workspace, hooks=hooks)
        except Exception as exc:
            resume = resume_possible(job, self.workspace)
            log.warning("%s crashed (%s); retrying once%s", job.id, exc,
                        ", resuming from its checkpoint" if resume else "")
            result = train_run(job.config, self.workspace, hooks=hooks, resume=resume)
        return JobOutcome(result.stop_reason, result.run_id, result.collapsed)
