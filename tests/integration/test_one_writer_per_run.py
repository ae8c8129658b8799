"""One writer per run identity: a second concurrent `finscale train` refuses naming the
holder; RUNNING runs left by dead processes are released; a finished identity is returned,
never trained twice (``--resume`` of a finished run says so)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import torch
from mlflow.tracking import MlflowClient

from finscale.config import load_config
from finscale.tracking import TrackingTarget, run_metrics_history
from finscale.training.run import train_run
from finscale.training.run_lock import RunLockedError, run_identity_lock
from finscale.workspace import Workspace
from tests.support.raw_workspace import fill_raw_workspace

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "configs" / "base.yaml"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SMALL = ["model.budget=10k", "dataset.context=32", "training.epochs=2", "training.device=cpu",
         "thermal.sensor=none", "training.log_model=false"]
CLI_TIMEOUT_S = 300


def _runs(workspace: Workspace) -> list:
    client = MlflowClient(workspace.mlflow_uri)
    experiment = client.get_experiment_by_name("finscale")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def _cli(workspace: Workspace) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "finscale.cli.main", "--home", str(workspace.home), "train",
         "--config", str(REPO / "configs" / "base.yaml"), *SMALL],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


@pytest.mark.slow
def test_two_concurrent_trains_of_one_identity_give_one_run(
    workspace: Workspace, shared_data_dir: Path
) -> None:
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    first, second = _cli(workspace), _cli(workspace)
    outcomes = [(*p.communicate(timeout=CLI_TIMEOUT_S), p.returncode) for p in (first, second)]
    codes = sorted(code for _, _, code in outcomes)
    refused = next(err for _, err, code in outcomes if code != 0)
    assert codes == [0, 3], outcomes
    refusal = [line for line in refused.splitlines() if "refused" in line]  # logs aside
    assert len(refusal) == 1 and refusal[0].startswith("train refused: run phase=dev|")
    assert "is already being trained by pid" in refusal[0]
    assert [r.info.status for r in _runs(workspace)] == ["FINISHED"]


def _orphaned_run(workspace: Workspace) -> str:
    """A process that starts the identity's MLflow run and is SIGKILLed before any
    checkpoint: its run stays RUNNING in the store."""
    script = (
        "import os, signal, sys; from pathlib import Path\n"
        "from finscale.config import load_config\n"
        "from finscale.tracking import RunTracker, TrackingTarget\n"
        "from finscale.training.run_key import RunKey\n"
        "from finscale.workspace import Workspace\n"
        f"config = load_config(Path({str(BASE)!r}), overrides={SMALL!r})\n"
        f"workspace = Workspace.resolve({str(workspace.home)!r})\n"
        "target = TrackingTarget.for_workspace(workspace, config.tracking.experiment)\n"
        "print(RunTracker(target).start(RunKey.from_config(config)), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S, cwd=REPO)
    assert done.returncode == -9, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_abandoned_running_run_is_released_and_finished_identity_is_reused(
    workspace: Workspace, shared_data_dir: Path
) -> None:
    torch.set_num_threads(1)
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml", overrides=SMALL)
    target = TrackingTarget.for_workspace(workspace, config.tracking.experiment)
    orphan = _orphaned_run(workspace)
    assert MlflowClient(target.uri).get_run(orphan).info.status == "RUNNING"
    result = train_run(config, workspace)
    orphan_run = MlflowClient(target.uri).get_run(orphan)
    assert orphan_run.info.status == "KILLED"
    assert orphan_run.data.tags["stop_reason"] == "abandoned"
    assert result.run_id != orphan and not result.reused
    history = run_metrics_history(target, result.run_id, "val_auc")

    again = train_run(config, workspace, resume=True)  # --resume of a finished run: no-op
    assert again.reused and again.run_id == result.run_id
    assert again.best_metric == pytest.approx(result.best_metric)
    assert run_metrics_history(target, result.run_id, "val_auc") == history  # nothing re-logged
    retried = train_run(config, workspace)  # a retried flow run finds the finished run
    assert retried.reused and retried.run_id == result.run_id
    assert sorted(r.info.status for r in _runs(workspace)) == ["FINISHED", "KILLED"]


def test_the_lock_is_per_identity_and_dies_with_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    held_here = rf"id-a is already being trained by pid {os.getpid()}"
    with run_identity_lock(path, "id-a"):
        with pytest.raises(RunLockedError, match=held_here), run_identity_lock(path, "id-a"):
            pass
        with run_identity_lock(tmp_path / "b.lock", "id-b"):
            pass  # another identity is free
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path;"
        "from finscale.training.run_lock import run_identity_lock;"
        f"cm = run_identity_lock(Path({str(path)!r}), 'id-a'); cm.__enter__();"
        "print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"), \
                run_identity_lock(path, "id-a"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_identity_lock(path, "id-a"):  # SIGKILL released it: no stale lock
        pass


def test_postgres_store_locks_the_identity_across_hosts(tmp_path: Path) -> None:
    engine = sa.create_engine(PG)
    with engine.connect():
        pass  # fail (not skip) when PostgreSQL is down: .ci/run starts it
    engine.dispose()
    identity = f"phase=t|settings={uuid.uuid4().hex[:10]}"
    with run_identity_lock(tmp_path / "host1" / "x.lock", identity, PG), \
            pytest.raises(RunLockedError, match="another host"), \
            run_identity_lock(tmp_path / "host2" / "x.lock", identity, PG):
        pass
    with run_identity_lock(tmp_path / "host2" / "x.lock", identity, PG):
        pass  # released when the first holder ended
