"""Prefect tasks of the experiment matrix: what is left to run, one matrix study, a summary.

All use ``retries=0`` and ``cache_policy=NONE``:
- retries 0: "what is left" is read from the Optuna storage and MLflow, which a retry would
  read again identically; a study's failed trials are recorded in the study itself and the
  next ``experiment`` run continues it.
- cache NONE: the matrix's state changes with every job; a cached "what is left" would
  resubmit finished jobs or skip unfinished ones.
Jobs cross the flow boundary as plain data: id, config path, overrides (what a worker
loads), and for a final job whether a checkpoint exists to resume from.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from prefect import task
from prefect.cache_policies import NONE

from finscale.experiments.hpo_adapter import run_study_job
from finscale.experiments.matrix import Job, load_matrix
from finscale.experiments.run import (
    finals_by_state,
    find_job,
    matrix_workspace,
    resume_possible,
    studies_to_run,
)
from finscale.experiments.status import matrix_status, study_states

EXPERIMENT_RETRIES = 0


def _job_data(job: Job) -> dict[str, Any]:
    return {"id": job.id, "identity": job.identity, "config_path": job.config_path,
            "overrides": list(job.all_overrides)}


@task(retries=EXPERIMENT_RETRIES, cache_policy=NONE, task_run_name="pending-studies")
def pending_studies(config_path: str, home: str | None) -> list[dict[str, Any]]:
    """The studies final jobs wait for that are not done (``studies_to_run``)."""
    matrix = load_matrix(config_path)
    workspace = matrix_workspace(matrix, home)
    return [_job_data(job) for job in studies_to_run(matrix, study_states(matrix, workspace))]


@task(retries=EXPERIMENT_RETRIES, cache_policy=NONE, task_run_name="pending-finals")
def pending_finals(config_path: str, home: str | None) -> dict[str, Any]:
    """Final jobs to run (with their study's parameters), and the ids finished or waiting."""
    matrix = load_matrix(config_path)
    workspace = matrix_workspace(matrix, home)
    to_run, finished, waiting = finals_by_state(matrix, workspace,
                                                study_states(matrix, workspace))
    jobs = [{**_job_data(job), "resume": resume_possible(job, workspace)} for job in to_run]
    return {"to_run": jobs, "finished": finished, "waiting": waiting}


@task(retries=EXPERIMENT_RETRIES, cache_policy=NONE, task_run_name="matrix-study")
def run_matrix_study(config_path: str, job_id: str, home: str | None) -> dict[str, Any]:
    """Run one study of the matrix to its trial count (``run_study_job``)."""
    matrix = load_matrix(config_path)
    progress = run_study_job(find_job(matrix, job_id), matrix_workspace(matrix, home))
    return {"study": progress.name, "state": progress.state, "trials": progress.counted,
            "best_value": progress.best_value}


@task(retries=EXPERIMENT_RETRIES, cache_policy=NONE, task_run_name="matrix-summary")
def matrix_summary(config_path: str, home: str | None) -> dict[str, int]:
    """Jobs by state (``matrix_status``)."""
    matrix = load_matrix(config_path)
    return dict(Counter(s.state for s in matrix_status(matrix, matrix_workspace(matrix, home))))
