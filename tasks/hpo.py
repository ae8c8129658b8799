"""Prefect tasks of HPO: open the study, run one trial, publish the summary.

All use ``retries=0`` and ``cache_policy=NONE``:
- retries 0: a trial's failure is recorded in the study (failed, with its error) and the
  flow goes on with the next trial; retrying the task would run a second trial, not the
  same one again. Storage errors at open are not transient in practice (bad URL, schema).
- cache NONE: the state lives in the Optuna storage; every call must read it afresh (a
  cached "remaining" or trial result would skip real work).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import task
from prefect.cache_policies import NONE

from finscale.hpo.space import load_spec
from finscale.hpo.study import HpoStudy
from finscale.workspace import Workspace

HPO_RETRIES = 0


def _open(spec_path: str, storage: str | None, home: str | None, worker: int) -> HpoStudy:
    spec = load_spec(spec_path)
    cell = spec.cell_config().workspace
    workspace = Workspace.resolve(home or cell.home, manifest_url=cell.manifest_url).ensure()
    return HpoStudy.open(spec, workspace, storage, worker)


@task(retries=HPO_RETRIES, cache_policy=NONE, task_run_name="open-study")
def open_study(spec_path: str, trials: int | None, storage: str | None, home: str | None,
               ) -> dict[str, Any]:
    """Create or continue the study; its name, total, trials left and the cell config
    (path + overrides) the thermal gate reads."""
    hpo = _open(spec_path, storage, home, 0)
    total = trials or hpo.spec.file.study.n_trials
    hpo.begin()
    return {"study": hpo.name, "n_trials": total, "remaining": hpo.remaining(total),
            "config_path": str(hpo.spec.config_path),
            "overrides": list(hpo.spec.base_overrides)}


@task(retries=HPO_RETRIES, cache_policy=NONE, task_run_name="hpo-trial")
def run_trial(spec_path: str, n_trials: int, storage: str | None, home: str | None,
              worker: int) -> dict[str, Any]:
    """One trial (``HpoStudy.run_trial``): its summary, trials left, and why to stop."""
    return asdict(_open(spec_path, storage, home, worker).run_trial(n_trials))


@task(retries=HPO_RETRIES, cache_policy=NONE, task_run_name="publish-study")
def publish_study(spec_path: str, storage: str | None, home: str | None,
                  status: str) -> dict[str, Any] | None:
    """Best value and parameters, counts and plots on the parent run; the best as data."""
    best = _open(spec_path, storage, home, 0).finish(status)
    return None if best is None else best.as_dict()
