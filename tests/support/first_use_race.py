"""Workers for tests that start two processes on an empty store at the same instant
(the manifest, the refresh log, MLflow's tracking store).

Each runs in a ``spawn`` child (nothing inherited but its arguments), waits on a shared
barrier so both open the store together, then does its part. A worker reports failure by
raising: the child exits non-zero and the test reads its exit code and stderr.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pandas as pd

from finscale.data.refresh_log import RefreshLog
from finscale.manifest.artifacts import save_frame
from finscale.manifest.store import Manifest

SAME_NAME = "raw/same"  # both workers store the identical frame under it
EACH_NAME = "raw/each"  # each worker stores its own frame under it
BARRIER_TIMEOUT_S = 120.0
TRACKING_EXPERIMENT = "first-use"
JOIN_TIMEOUT_S = 180.0


def run_pair(target: Callable[..., None], *args: Any) -> None:
    """``target(*args, worker, barrier)`` in two spawned processes released together; both
    must exit 0. The caller puts ``tests.support.IMPORT_ROOT`` on sys.path first."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=target, args=(*args, w, barrier)) for w in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(JOIN_TIMEOUT_S)
    if [w.exitcode for w in workers] != [0, 0]:
        raise AssertionError(f"worker exit codes {[w.exitcode for w in workers]}; their "
                             f"stderr says why")


def frame_of(value: float) -> pd.DataFrame:
    """A one-row frame; equal values give byte-identical Parquet files."""
    return pd.DataFrame({"x": [value]}, index=pd.DatetimeIndex(["2024-01-02"], name="Date"))


def register_on_empty_manifest(url: str, root: str, worker: int, barrier: Barrier) -> None:
    """Open the (empty) manifest and store two frames, both at the same time as the peer."""
    barrier.wait(BARRIER_TIMEOUT_S)
    try:
        manifest = Manifest(url, Path(root))  # both create the schema at once
        RefreshLog(url).close()  # and the refresh log's table
    except BaseException:
        barrier.abort()  # the peer stops waiting for us at once
        raise
    try:
        barrier.wait(BARRIER_TIMEOUT_S)
        directory = Path(root) / f"worker{worker}"
        save_frame(manifest, frame_of(1.0), name=SAME_NAME, kind="raw", directory=directory,
                   source=f"worker{worker}", config_hash="h")
        save_frame(manifest, frame_of(10.0 + worker), name=EACH_NAME, kind="raw",
                   directory=directory, source=f"worker{worker}", config_hash="h")
    finally:
        manifest.close()


def start_first_run(home: str, worker: int, barrier: Barrier) -> None:
    """In a workspace without an MLflow store yet: look for a finished run, then start and end
    one, as a training run does first."""
    from finscale.tracking import RunTracker, TrackingTarget, find_finished_run
    from finscale.training.run_key import RunKey
    from finscale.workspace import Workspace

    target = TrackingTarget.for_workspace(Workspace.resolve(home), TRACKING_EXPERIMENT)
    key = RunKey("race", "SPY", "daily", "10k", 1, "a20", "all", worker, "0" * 10)
    barrier.wait(BARRIER_TIMEOUT_S)
    if find_finished_run(target, key) is not None:
        raise AssertionError(f"worker {worker}: a finished run in a fresh store")
    tracker = RunTracker(target)
    tracker.start(key)
    tracker.end()
