"""Flow ``train``: thermal gate, then one training run (config path + overrides).

Orchestration only. On a Prefect server with a global concurrency limit named
``gpu_slot`` (``prefect gcl create gpu --limit 1``), the run holds one slot so only one
job uses the GPU; ``gpu_slot=None`` skips it (tests, ephemeral Prefect). ``strict_slot``
makes a missing limit an error instead of being silently skipped.
"""

from __future__ import annotations

from contextlib import nullcontext

from prefect import flow
from prefect.concurrency.sync import concurrency

from tasks.training import thermal_gate, train_model

DEFAULT_CONFIG = "configs/base.yaml"
GATE_TIMEOUT_S = 3600.0


@flow(name="train", log_prints=True)
def train(
    config_path: str = DEFAULT_CONFIG,
    overrides: list[str] = [],  # noqa: B006 - Prefect parameters need a literal default
    resume: bool = False,
    home: str | None = None,
    gpu_slot: str | None = None,
    strict_slot: bool = True,
    gate_timeout_s: float = GATE_TIMEOUT_S,
) -> dict[str, object]:
    """Wait for a cool host, then train; returns run id, run key, best metric, stop reason."""
    gate = thermal_gate(config_path, list(overrides), gate_timeout_s)
    print(f"thermal gate passed: {gate.celsius} °C ({gate.state}, {gate.source})")
    slot = (concurrency(gpu_slot, occupy=1, strict=strict_slot) if gpu_slot
            else nullcontext())
    with slot:
        result = train_model(config_path, list(overrides), resume=resume, home=home)
    print(f"run {result['run_id']} ({result['run_key']}): {result['stop_reason']}, "
          f"{result['metric_name']}={result['best_metric']}")
    return result
