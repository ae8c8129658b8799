"""Flow ``hpo``: an Optuna study, one trial at a time behind the thermal gate.

Orchestration only. Each trial holds one slot of the global concurrency limit ``gpu``
(strict: a missing limit is an error) and passes the thermal gate inside it, so the reading
is of the host the trial is about to heat. A trial that the thermal guard stopped is
recorded failed (reason ``thermal``) and queued again; the next gate waits for a cool host.
Several flow runs (on several hosts, with different ``worker`` numbers) may share a study
through a PostgreSQL storage.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

from prefect import flow
from prefect.concurrency.sync import concurrency

from tasks.hpo import open_study, publish_study, run_trial
from tasks.training import thermal_gate

DEFAULT_SPEC = "configs/hpo/demo.yaml"
GPU_SLOT = "gpu"
GATE_TIMEOUT_S = 3600.0
STOP_FAILURES = "failures"


@flow(name="hpo", log_prints=True)
def hpo(
    spec_path: str = DEFAULT_SPEC,
    trials: int | None = None,
    timeout_s: float | None = None,
    storage: str | None = None,
    home: str | None = None,
    worker: int = 0,
    gpu_slot: str | None = GPU_SLOT,
    gate_timeout_s: float = GATE_TIMEOUT_S,
) -> dict[str, object]:
    """Run (or continue) the study of an HPO file; returns its name and best parameters.

    Args:
        spec_path: HPO file relative to the repository root (e.g. configs/hpo/demo.yaml).
        trials: trials the study should hold in total; empty uses study.n_trials of the file.
            A study that already holds them runs nothing.
        timeout_s: start no new trial after this many seconds; empty: no limit.
        storage: Optuna storage URL (postgresql+psycopg://... for several workers); empty
            uses the file's study.storage, else SQLite in the workspace.
        home: workspace folder (data, checkpoints, MLflow, optuna.db); empty uses the config's.
        worker: this flow run's number when several run one study (their samplers draw
            differently).
        gpu_slot: global concurrency limit held during each trial (strict: it must exist);
            empty runs without one.
        gate_timeout_s: seconds the thermal gate waits for a cool host before failing.
    """
    plan = open_study(spec_path, trials, storage, home)
    print(f"study {plan['study']}: {plan['remaining']} of {plan['n_trials']} trials to run")
    started = time.monotonic()
    remaining = int(plan["remaining"])
    status = "KILLED"
    try:
        while remaining > 0 and (timeout_s is None or time.monotonic() - started < timeout_s):
            slot = concurrency(gpu_slot, occupy=1, strict=True) if gpu_slot else nullcontext()
            with slot:
                thermal_gate(plan["config_path"], list(plan["overrides"]), gate_timeout_s)
                outcome = run_trial(spec_path, plan["n_trials"], storage, home, worker)
            trial = outcome["trial"]
            print(f"trial {trial['number']} {trial['state']} value={trial['value']} "
                  f"{trial['reason']}")
            remaining = int(outcome["remaining"])
            if outcome["stop"] == STOP_FAILURES:
                raise RuntimeError(f"study {plan['study']}: trials keep failing, last: "
                                   f"{trial['error'] or trial['reason']}")
        status = "FINISHED"
    finally:
        best = publish_study(spec_path, storage, home, status)
    return {"study": plan["study"], "remaining": remaining, "best": best}
