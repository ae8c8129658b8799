"""Where each job of a matrix stands: studies from their Optuna storage, final runs from
MLflow by run identity.

A final job's identity includes its study's best parameters, so it is known once the study
is done; until then the job is ``waiting``. States of a final run, by its MLflow runs of
that identity (the most telling wins): ``done`` (FINISHED), ``collapsed`` (FINISHED with
tag collapsed=true: recorded, not a result), ``running``, ``thermal-stopped`` (KILLED by
the thermal guard: pending again), ``failed``, ``stopped`` (KILLED for another reason),
else ``pending``. Only ``done`` and ``collapsed`` are finished: a later ``run`` skips them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from finscale.experiments.hpo_adapter import DONE as STUDY_DONE
from finscale.experiments.hpo_adapter import StudyProgress, study_progress
from finscale.experiments.matrix import Job, Matrix, with_study_overrides
from finscale.tracking import (
    STATUS_FAILED,
    STATUS_FINISHED,
    STATUS_KILLED,
    RunRecord,
    TrackingTarget,
    runs_with_tag,
)
from finscale.workspace import Workspace

DONE = "done"
COLLAPSED = "collapsed"
RUNNING = "running"
THERMAL = "thermal-stopped"
FAILED = "failed"
STOPPED = "stopped"
PENDING = "pending"
WAITING = "waiting"
FINISHED_STATES = (DONE, COLLAPSED)
STATUS_RUNNING = "RUNNING"
MS = 1000.0
# the most telling state first: one finished run settles the identity
PRECEDENCE = (DONE, COLLAPSED, RUNNING, THERMAL, FAILED, STOPPED)


@dataclass(frozen=True)
class JobStatus:
    """A job's state with its MLflow run (if any) and the time it took or has taken."""

    job: Job
    state: str
    run_id: str | None = None
    experiment_id: str | None = None
    elapsed_s: float | None = None
    detail: str = ""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


def tracking_target(matrix: Matrix, workspace: Workspace) -> TrackingTarget:
    """The MLflow experiment the matrix's runs are filed under."""
    config = matrix.final_jobs[0].config
    return TrackingTarget.for_workspace(workspace, config.tracking.experiment,
                                        config.tracking.uri)


def study_states(matrix: Matrix, workspace: Workspace) -> dict[str, StudyProgress]:
    """Every study the matrix's final jobs use, by study job id."""
    return {sid: study_progress(job, workspace) for sid, job in matrix.studies().items()}


def resolve_final(job: Job, studies: Mapping[str, StudyProgress]) -> Job | None:
    """The final job as it trains (its study's best parameters applied), or None while its
    study has no best parameters yet. A job without a study is already resolved."""
    if job.study is None:
        return job
    progress = studies.get(job.study)
    if progress is None or progress.state != STUDY_DONE or progress.best_overrides is None:
        return None
    return with_study_overrides(job, progress.best_overrides)


def run_state(record: RunRecord) -> str:
    """One MLflow run's state (see the module docstring)."""
    if record.status == STATUS_FINISHED:
        return COLLAPSED if record.tags.get("collapsed") == "true" else DONE
    if record.status == STATUS_RUNNING:
        return RUNNING
    if record.status == STATUS_KILLED:
        return THERMAL if record.tags.get("stop_reason") == "thermal" else STOPPED
    if record.status == STATUS_FAILED:
        return FAILED
    return PENDING


def _elapsed(start_ms: int | None, end_ms: int | None) -> float | None:
    if start_ms is None:
        return None
    return ((end_ms if end_ms is not None else time.time() * MS) - start_ms) / MS


def _final_status(job: Job, runs: Sequence[tuple[RunRecord, int | None, int | None]]
                  ) -> JobStatus:
    if not runs:
        return JobStatus(job, PENDING)
    ranked = sorted(runs, key=lambda r: (PRECEDENCE.index(run_state(r[0]))
                                         if run_state(r[0]) in PRECEDENCE else len(PRECEDENCE),
                                         -(r[1] or 0)))
    record, start, end = ranked[0]
    state = run_state(record)
    return JobStatus(job, state, record.run_id, record.experiment_id, _elapsed(start, end),
                     detail=record.tags.get("stop_reason", ""))


def _study_status(job: Job, progress: StudyProgress) -> JobStatus:
    state = {"pending": PENDING, "running": RUNNING, "done": DONE, "failed": FAILED}[
        progress.state]
    detail = f"{progress.counted}/{progress.wanted} trials"
    if progress.best_value is not None:
        detail += f", best {progress.best_value:.4f}"
    return JobStatus(job, state, progress.parent_run_id, None, progress.elapsed_s, detail)


def matrix_status(matrix: Matrix, workspace: Workspace,
                  studies: Mapping[str, StudyProgress] | None = None) -> list[JobStatus]:
    """Studies first, then final jobs (resolved where their study is done)."""
    studies = dict(studies) if studies is not None else study_states(matrix, workspace)
    statuses = [_study_status(job, studies[sid]) for sid, job in matrix.studies().items()]
    by_key: dict[str, list[tuple[RunRecord, int | None, int | None]]] = {}
    for entry in runs_with_tag(tracking_target(matrix, workspace), "phase", matrix.spec.phase):
        by_key.setdefault(entry[0].tags.get("run_key", ""), []).append(entry)
    for job in matrix.final_jobs:
        resolved = resolve_final(job, studies)
        if resolved is None:
            statuses.append(JobStatus(job, WAITING, detail=f"for study {job.study}"))
            continue
        statuses.append(_final_status(resolved, by_key.get(resolved.identity, [])))
    return statuses
