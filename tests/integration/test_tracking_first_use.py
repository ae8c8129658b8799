"""Two training processes start at the same instant in a workspace whose MLflow SQLite store
does not exist yet: both runs are recorded, in one experiment, and neither crashes in
MLflow's schema migration or in creating the experiment. Repeated: one round can miss."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from finscale.workspace import Workspace
from tests.support import IMPORT_ROOT
from tests.support.first_use_race import TRACKING_EXPERIMENT, run_pair, start_first_run

pytestmark = pytest.mark.integration
ROUNDS = 2


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_first_runs_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, round_: int
) -> None:
    monkeypatch.syspath_prepend(str(IMPORT_ROOT))  # spawned children import tests.support
    workspace = Workspace.resolve(tmp_path / "ws")
    assert not Path(workspace.mlflow_uri.removeprefix("sqlite:///")).exists()

    run_pair(start_first_run, str(workspace.home))

    client = MlflowClient(tracking_uri=workspace.mlflow_uri)
    experiment = client.get_experiment_by_name(TRACKING_EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["seed"] for r in runs) == ["1", "2"]
    assert {r.info.status for r in runs} == {"FINISHED"}
