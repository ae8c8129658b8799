"""Prefect task of evaluation: publish an experiment's report (one library call).

``retries=0`` and ``cache_policy=NONE``:
- retries 0: the failures seen are deterministic (an unknown experiment, no finished run to
  report, a model run that scored other samples than its baselines): a retry fails the same
  way. Whatever one call logged stays logged (each baseline run is FINISHED or ignored),
  so running the flow again redoes only what is missing.
- cache NONE: the report reads MLflow as it is now; runs finish between two calls with the
  same parameters, and a cache hit would publish a report that leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NONE

from finscale.evaluation.publish import report_experiment
from finscale.runtime import load_runtime

REPORT_RETRIES = 0


@dataclass(frozen=True)
class ReportRef:
    """Where the report is (folder, index.html) and what it holds."""

    folder: str
    index: str
    rows: int
    images: int
    parent_run_id: str
    baselines_logged: int


@task(retries=REPORT_RETRIES, cache_policy=NONE, task_run_name="report-{experiment}")
def publish_report_task(experiment: str, config_path: str | None, home: str | None,
                        baselines: bool) -> ReportRef:
    """``report_experiment`` with the config (file or the default) and workspace."""
    config, workspace = load_runtime([config_path] if config_path else None, (), home)
    published = report_experiment(experiment, config, workspace, baselines=baselines)
    return ReportRef(folder=str(published.folder), index=str(published.index),
                     rows=published.rows, images=len(published.images),
                     parent_run_id=published.parent_run_id,
                     baselines_logged=sum(len(b.logged) for b in published.baselines))
