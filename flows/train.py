"""Flow ``train``: thermal gate, then one training run (config path + overrides).

Orchestration only. The run holds one slot of the global concurrency limit ``gpu``
(created at bootstrap: ``prefect gcl create gpu --limit 1``) so only one job uses the GPU.
The slot is strict: a missing limit is an error, never a silent run without the slot.
``gpu_slot=None`` skips it (tests, a one-off run on a laptop).
"""

from __future__ import annotations

from contextlib import nullcontext

from prefect import flow
from prefect.concurrency.sync import concurrency

from tasks.training import thermal_gate, train_model

DEFAULT_CONFIG = "configs/base.yaml"
GPU_SLOT = "gpu"
GATE_TIMEOUT_S = 3600.0


@flow(name="train", log_prints=True)
def train(
    config_path: str = DEFAULT_CONFIG,
    overrides: list[str] = [],  # noqa: B006 - Prefect parameters need a literal default
    resume: bool = False,
    home: str | None = None,
    gpu_slot: str | None = GPU_SLOT,
    gate_timeout_s: float = GATE_TIMEOUT_S,
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
    """
    slot = concurrency(gpu_slot, occupy=1, strict=True) if gpu_slot else nullcontext()
    with slot:  # gate inside the slot: the reading is of the host this run is about to heat
        gate = thermal_gate(config_path, list(overrides), gate_timeout_s)
        print(f"thermal gate passed: {gate.celsius} °C ({gate.state}, {gate.source})")
        result = train_model(config_path, list(overrides), resume=resume, home=home)
    print(f"run {result['run_id']} ({result['run_key']}): {result['stop_reason']}, "
          f"{result['metric_name']}={result['best_metric']}")
    return result
