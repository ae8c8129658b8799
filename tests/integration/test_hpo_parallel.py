"""Two worker processes on one study, on SQLite and on PostgreSQL (a fresh schema, so the
two create it at the same moment): every trial is recorded once, none is lost, trial numbers
are unique, and each trial has exactly one MLflow child run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch

from finscale.datasets.build import build_dataset
from finscale.hpo.space import load_spec
from finscale.hpo.study import load_study
from finscale.manifest.store import Manifest
from tests.support.hpo import REPO, filled_workspace, own_tracking_env, study_runs, tiny_spec
from tests.support.postgres import STORE_KINDS, fresh_store_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WORKERS = 2
TRIALS = 4
WORKER_TIMEOUT_S = 400.0
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL)


@pytest.fixture(autouse=True)
def _own_tracking_env() -> Iterator[None]:
    with own_tracking_env():
        yield


@pytest.fixture(params=STORE_KINDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh Optuna storage: a SQLite file, or a new PostgreSQL schema (dropped after)."""
    with fresh_store_url(request.param, tmp_path, "hpo_test") as url:
        yield url


def test_two_workers_share_one_study(
    storage: str, tmp_path: Path, shared_data_dir: Path
) -> None:
    torch.set_num_threads(1)
    workspace = filled_workspace(tmp_path / "ws", shared_data_dir)
    path = tiny_spec(tmp_path, "hpoparallel", overrides=("training.epochs=1",))
    spec = load_spec(path)
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:  # built once up front: the workers share the study, not a dataset build race
        build_dataset(manifest, workspace, spec.cell_config())
    finally:
        manifest.close()
    env = {**os.environ, "FINSCALE_HOME": str(workspace.home), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen(
        [sys.executable, "-m", "finscale.cli.main", "hpo", "run", str(path), "--trials",
         str(TRIALS), "--storage", storage, "--worker", str(k)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) for k in range(WORKERS)]
    outputs = [w.communicate(timeout=WORKER_TIMEOUT_S)[0] for w in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
    ran = [int(out.split("ran ", 1)[1].split()[0]) for out in outputs]
    trials = load_study(spec.study_name(), storage).get_trials()
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))  # unique, no gap
    assert TRIALS <= len(trials) <= TRIALS + WORKERS - 1  # counted before each start
    assert sum(ran) == len(trials)  # every trial a worker ran is in the study, once
    assert all(t.state in FINISHED for t in trials)
    _, children = study_runs(workspace, spec.study_name())
    assert sorted(int(c.data.tags["hpo_trial"]) for c in children) == numbers
