"""HPO test helpers: tiny HPO files over the real data and readers of a study's MLflow runs.

Trials stay tiny (30k parameters, context 32, 1-3 epochs, SPY with VIX and macro columns)
so a study of a few trials runs in well under a minute on two cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from finscale.workspace import TRACKING_URI_ENV, Workspace
from tests.support.raw_workspace import fill_raw_workspace

REPO = Path(__file__).resolve().parents[2]
CELL_CONFIG = REPO / "configs" / "experiments" / "cpu_demo.yaml"
EXPERIMENT = "finscale"
TINY = ["dataset.context=32", "model.budget=30k", "training.epochs=3", "training.device=cpu",
        "training.log_model=false", "thermal.sensor=none"]
TINY_SPACE: dict[str, Any] = {
    "training.lr": {"type": "float", "low": 1.0e-5, "high": 1.0e-2, "log": True},
    "model.dropout": {"type": "float", "low": 0.0, "high": 0.3},
    "model.n_layers": {"type": "int", "low": 1, "high": 2},
}
# a pruner that prunes early and often: a trial worse than the median at any epoch stops
EAGER_STUDY: dict[str, Any] = {
    "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 5},
    "pruner": {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
}


@contextmanager
def own_tracking_env() -> Iterator[None]:
    """No MLFLOW_TRACKING_URI inside, the previous value after. ``mlflow.set_tracking_uri``
    exports it and training honours it, so a run earlier in this process (another test's
    workspace) would otherwise receive this test's runs, and its finished runs be reused."""
    saved = os.environ.pop(TRACKING_URI_ENV, None)
    try:
        yield
    finally:
        os.environ.pop(TRACKING_URI_ENV, None)
        if saved is not None:
            os.environ[TRACKING_URI_ENV] = saved


def tiny_spec(folder: Path, phase: str, *, overrides: tuple[str, ...] = (),
              space: dict[str, Any] | None = None, study: dict[str, Any] | None = None,
              name: str = "hpo.yaml") -> Path:
    """Write an HPO file for the cpu-demo cell made tiny; ``phase`` separates studies."""
    data = {"config": str(CELL_CONFIG),
            "overrides": [f"experiment.phase={phase}", *TINY, *overrides],
            "study": study or EAGER_STUDY, "space": space or TINY_SPACE}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def filled_workspace(home: Path, data_dir: Path) -> Workspace:
    """A workspace holding SPY, VIX and every FRED series of the mirror."""
    workspace = Workspace.resolve(home).ensure()
    fill_raw_workspace(workspace, data_dir, tickers=["SPY", "VIX"])
    return workspace


def study_runs(workspace: Workspace, study_name: str) -> tuple[Run, list[Run]]:
    """The study's parent run and its trials' child runs (ordered by trial number)."""
    client = MlflowClient(workspace.mlflow_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.hpo_study = '{study_name}'")
    (parent,) = [r for r in runs if r.data.tags.get("hpo_role") == "study"]
    children = [r for r in runs if r.data.tags.get("hpo_role") == "trial"]
    return parent, sorted(children, key=lambda r: int(r.data.tags["hpo_trial"]))


def artifact_text(workspace: Workspace, run_id: str, name: str) -> str:
    """A text artifact of a run, read through MLflow."""
    client = MlflowClient(workspace.mlflow_uri)
    local = client.download_artifacts(run_id, name, str(workspace.home / "downloads" / run_id))
    return Path(local).read_text(encoding="utf-8")
