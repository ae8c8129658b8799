"""Prefect tasks of the training area: the thermal gate and one training run.

Both use ``retries=0`` and ``cache_policy=NONE``:
- retries 0: a training run is long and its failures are mostly deterministic (bad config,
  budget mismatch, tiny split, thermal stop); retrying blindly burns GPU hours and opens a
  second MLflow run. The recovery path is explicit: run the flow again with ``resume=True``.
  Prefect's retries only catch exceptions inside a live process; a killed process is
  retried by the bootstrap's automation re-running the crashed flow run once, and that
  re-run (``rerun=True``) continues the identity's last checkpoint when there is one.
- cache NONE: the result lives in MLflow and the checkpoint folder, and a request to train
  must train (a cache hit would silently skip a re-run with new data or code). Skipping
  finished run keys is a deliberate decision of the experiment flows (``find_finished_run``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from finscale.config import AppConfig, load_config
from finscale.runtime import load_runtime
from finscale.thermal.policy import ThermalPolicy, wait_until_safe
from finscale.thermal.sensors import make_sensor
from finscale.training.checkpoint import LAST_NAME
from finscale.training.run import train_run
from finscale.training.run_key import RunKey
from finscale.workspace import Workspace

TRAIN_RETRIES = 0
GATE_RETRIES = 0


@dataclass(frozen=True)
class GateReading:
    """The reading the gate waited for (°C or None, state, sensor)."""

    celsius: float | None
    state: str
    source: str


def load_run_context(
    config_path: str, overrides: Sequence[str], home: str | None = None
) -> tuple[AppConfig, Workspace]:
    """The config (file + overrides) and its workspace (``home`` wins over the config)."""
    return load_runtime([config_path], overrides, home)


@task(retries=GATE_RETRIES, cache_policy=NONE, task_run_name="thermal-gate")
def thermal_gate(config_path: str, overrides: list[str], timeout_s: float) -> GateReading:
    """Wait until the host is cool enough to start training (see ``wait_until_safe``)."""
    config = load_config(Path(config_path), overrides=overrides)
    reading = wait_until_safe(make_sensor(config.thermal),
                              ThermalPolicy.from_config(config.thermal), timeout_s)
    return GateReading(reading.celsius, reading.state.value, reading.source)


def has_checkpoint(config: AppConfig, workspace: Workspace) -> bool:
    """Whether the run identity of ``config`` left a last checkpoint to continue from."""
    return (workspace.checkpoints_dir / RunKey.from_config(config).as_path() / LAST_NAME).is_file()


@task(retries=TRAIN_RETRIES, cache_policy=NONE, task_run_name="train-model")
def train_model(
    config_path: str, overrides: list[str], resume: bool = False, home: str | None = None,
    rerun: bool = False,
) -> dict[str, object]:
    """One training run (``finscale.training.run.train_run``); returns the small result.

    ``rerun``: Prefect is running this flow run again after a crash; continue the last
    checkpoint when the killed attempt left one (a fresh start would archive it), start
    fresh otherwise. A finished identity is returned either way (``reused``).
    """
    config, workspace = load_run_context(config_path, overrides, home)
    resume = resume or (rerun and has_checkpoint(config, workspace))
    return asdict(train_run(config, workspace, resume=resume))
