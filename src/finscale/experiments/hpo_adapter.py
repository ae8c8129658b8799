"""The one door from the experiment matrix to ``finscale.hpo``.

A matrix study is the HPO file's search space and study settings applied to the matrix
cell: the cell's base config and overrides come after the file's own overrides, and the
space leaves out every setting the cell fixes (a study of the 2M cell does not search the
budget). The study name then derives from the cell's identity (``finscale.hpo``'s rule),
so running the matrix again continues the same study.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from finscale.config.loader import parse_override
from finscale.config.schema import AppConfig
from finscale.experiments.matrix import Job
from finscale.workspace import Workspace

if TYPE_CHECKING:
    from finscale.hpo.space import StudySpec

PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"


class StudyJobError(ValueError):
    """A matrix study cannot run: no HPO file named, or it is missing."""


@dataclass(frozen=True)
class StudyProgress:
    """A study as stored: trials counted toward its total, its best parameters, its state."""

    name: str
    state: str  # pending, running, done, failed (enough trials, none usable)
    counted: int
    wanted: int
    best_overrides: tuple[str, ...] | None
    best_value: float | None = None
    elapsed_s: float | None = None
    parent_run_id: str | None = None  # the study's MLflow run


@cache
def _file_spec(path: str) -> StudySpec:
    from finscale.hpo.space import load_spec

    return load_spec(path)


def study_spec(job: Job) -> StudySpec:
    """The HPO spec of a matrix study (see the module docstring)."""
    from finscale.hpo.space import StudySpec

    if job.hpo_config is None:
        raise StudyJobError(f"{job.id}: the matrix names no hpo.config (the HPO file with the "
                            "search space and study settings)")
    if not Path(job.hpo_config).is_file():
        raise StudyJobError(f"{job.id}: HPO file {job.hpo_config} not found (hpo.config)")
    spec = _file_spec(str(Path(job.hpo_config).resolve()))
    fixed = {".".join(parse_override(text)[0]) for text in job.all_overrides}
    space = {path: p for path, p in spec.file.space.items()
             if path not in fixed and path not in job.hpo_exclude}
    if not space:
        raise StudyJobError(f"{job.id}: the cell fixes every setting of {job.hpo_config}'s "
                            "space: nothing is left to search")
    study = spec.file.study.model_copy(update={"n_trials": job.trials,
                                               "timeout_s": job.timeout_s})
    hpo_file = spec.file.model_copy(update={
        "overrides": (*spec.file.overrides, *job.all_overrides), "space": space,
        "study": study})
    return StudySpec(file=hpo_file, source=spec.source,
                     config_path=Path(job.config_path).resolve())


def study_config(job: Job) -> AppConfig:
    """The config each trial starts from (before suggestions): what the study costs."""
    return study_spec(job).cell_config()


def study_progress(job: Job, workspace: Workspace) -> StudyProgress:
    """Where the study stands in its storage (``pending`` when it does not exist yet)."""
    from finscale.hpo.study import (
        ATTR_PARENT,
        StudyNotFoundError,
        best_params,
        counts_toward_total,
        load_study,
        storage_url,
        study_status,
    )

    spec = study_spec(job)
    name = spec.study_name()
    try:
        study = load_study(name, storage_url(spec, workspace, None))
    except StudyNotFoundError:
        return StudyProgress(name, PENDING, 0, job.trials, None)
    trials = study.get_trials(deepcopy=False)
    counted = sum(map(counts_toward_total, trials))
    best = best_params(study)
    running = any(t.state.name == "RUNNING" for t in trials)
    if counted < job.trials or running:
        state = RUNNING if trials else PENDING
    else:
        state = DONE if best is not None else FAILED
    return StudyProgress(
        name=name, state=state, counted=counted, wanted=job.trials,
        best_overrides=tuple(best.overrides) if best is not None else None,
        best_value=best.value if best is not None else None,
        elapsed_s=study_status(study).elapsed_s, parent_run_id=study.user_attrs.get(ATTR_PARENT),
    )


def run_study_job(job: Job, workspace: Workspace) -> StudyProgress:
    """Run the study's missing trials in this process (continues a stored study)."""
    from finscale.hpo.study import run_study

    report = run_study(study_spec(job), workspace, n_trials=job.trials,
                       timeout_s=job.timeout_s)
    if report.stop is not None:
        raise StudyStoppedError(f"{job.id}: study {report.study} stopped ({report.stop}) "
                                f"with {report.remaining} trials to go")
    return study_progress(job, workspace)


class StudyStoppedError(RuntimeError):
    """A study stopped before its trials were done (thermal, timeout, repeated failures)."""
