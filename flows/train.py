"""Flow ``train``: thermal gate, then one training run (config path + overrides).

Orchestration only. The run holds one slot of the global concurrency limit ``gpu``
(created at bootstrap: ``prefect gcl create gpu --limit 1``) so only one job uses the GPU.
The slot is strict: a missing limit is an error, never a silent run without the slot.
``gpu_slot=None`` skips it (tests, a one-off run on a laptop).

Crash recovery (deployments/README.md, "Crash recovery"): the slot is a lease of
``gpu_lease_s`` that this process renews, so a killed run's slot returns to the pool when
the lease runs out. A run that Prefect re-runs after a crash (its ``run_count`` > 1)
continues the identity's last checkpoint when there is one; an identity that already
finished in MLflow is returned, never trained twice (``train_run``'s finished-run reuse).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated

from prefect import flow
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run
from pydantic import Field

from tasks.training import thermal_gate, train_model

DEFAULT_CONFIG = "configs/base.yaml"
GPU_SLOT = "gpu"
GATE_TIMEOUT_S = 3600.0
# Seconds a killed run keeps the gpu slot at most (renewed every 3/4 of it while alive).
# Prefect's server accepts leases of 60 s to one day.
GPU_LEASE_S = 120.0
MIN_LEASE_S = 60.0
MAX_LEASE_S = 86400.0


@flow(name="train", log_prints=True)
def train(
    config_path: str = DEFAULT_CONFIG,
    overrides: list[str] = [],  # noqa: B006 - Prefect parameters need a literal default
    resume: bool = False,
    home: str | None = None,
    gpu_slot: str | None = GPU_SLOT,
    gate_timeout_s: float = GATE_TIMEOUT_S,
    gpu_lease_s: Annotated[float, Field(ge=MIN_LEASE_S, le=MAX_LEASE_S)] = GPU_LEASE_S,
) -> dict[str, object]:
    """Wait for a cool host, then train; returns run id, run key, best metric, stop reason.

    Args:
        config_path: YAML experiment config, relative to the repository root
            (e.g. configs/experiments/cpu_demo.yaml).
        overrides: config overrides as key=value, applied after the file
            (e.g. ["model.budget=20M", "training.seed=1"]).
        resume: continue the run key's last checkpoint (after a thermal stop or a kill)
            instead of starting a fresh run.
        home: workspace folder (data, checkpoints, MLflow); empty uses the config's.
        gpu_slot: global concurrency limit to hold while training (strict: it must exist);
            empty runs without one.
        gate_timeout_s: seconds the thermal gate waits for a cool host before failing.
        gpu_lease_s: lease of the gpu slot in seconds (60 to 86400): a crashed run's slot
            is free again at most this long after its process died.
    """
    rerun = flow_run.run_count > 1  # Prefect re-ran this flow run (crash retry or UI retry)
    slot = (concurrency(gpu_slot, occupy=1, strict=True, lease_duration=gpu_lease_s)
            if gpu_slot else nullcontext())
    with slot:  # gate inside the slot: the reading is of the host this run is about to heat
        gate = thermal_gate(config_path, list(overrides), gate_timeout_s)
        print(f"thermal gate passed: {gate.celsius} °C ({gate.state}, {gate.source})")
        result = train_model(config_path, list(overrides), resume=resume, home=home,
                             rerun=rerun)
    done = "returned the finished run" if result["reused"] else str(result["stop_reason"])
    print(f"run {result['run_id']} ({result['run_key']}): {done}, "
          f"{result['metric_name']}={result['best_metric']}")
    return result
