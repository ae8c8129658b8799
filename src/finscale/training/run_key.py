"""The identity of a run: readable key fields plus a hash of every result-changing setting.

Two runs that differ in ANY setting that can change a result (include_vix, lr, channel
mode, ...) must never share a checkpoint folder, a resume state or an "already finished".
The readable fields (phase, tickers, timescale, budget, horizon, tier, task, seed[, fold])
say what a run is at a glance; ``settings`` is a short hash of the resolved config with
the settings on ``NON_RESULT_SETTINGS`` removed. That list is explicit and short: a new
config field is hashed unless someone decides, with a reason, that it cannot change a
result (``tests/unit/training/test_run_identity.py`` walks the whole schema).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from finscale.config.loader import config_hash, config_to_dict
from finscale.config.schema import AppConfig

ALL_TASKS = "all"
UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9._=+-]+")
SETTINGS_HASH_CHARS = 10

# Dotted config paths that cannot change a trained model or its metrics, each with why.
NON_RESULT_SETTINGS: Mapping[str, str] = {
    "workspace.home": "where files are written",
    "workspace.manifest_url": "where lineage is recorded",
    "tracking.uri": "where results are recorded",
    "tracking.experiment": "the MLflow experiment a run is filed under",
    "data.tickers": "refresh universe; a run reads stored data pinned by its input MD5 tags",
    "data.fred_series": "refresh universe; the dataset's macro_series is hashed",
    "data.source": "where a refresh fetches; the stored data's MD5s are tagged",
    "data.mirror": "a folder path for the csv source",
    "data.start": "refresh history start; the dataset's split ranges are hashed",
    "data.overlap_days": "refresh mechanics",
    "data.timeout_s": "refresh mechanics",
    "data.fred_api_root": "refresh endpoint",
    "data.retry.attempts": "refresh mechanics",
    "data.retry.base_delay_s": "refresh mechanics",
    "data.retry.max_delay_s": "refresh mechanics",
    "data.retry.jitter": "refresh mechanics",
    "data.validation.calendar": "refresh validation; rejected data is never stored",
    "data.validation.max_missing_sessions": "refresh validation; rejected data is never stored",
    "data.validation.nan_policy": "refresh validation; its result is pinned by the MD5 tags",
    "training.device": "the same cell on any device is the same experiment",
    "training.num_workers": "batch order is a function of (seed, epoch), not of the loaders",
    "training.eval_batch_size": "evaluation batching; metrics are the same up to float order",
    "training.thermal_check_every_steps": "when the thermal guard looks, not what is trained",
    "training.log_model": "whether the model is also logged as an MLflow model",
    "training.compile": "a compiled step computes the eager step's function; they agree within "
    "float tolerance (tests/unit/training/test_compile.py), as the same run on another device",
    "thermal.sensor": "pauses and stops do not change what is trained (resume is exact)",
    "thermal.file_path": "thermal guard input",
    "thermal.soft_limit_c": "thermal guard limit",
    "thermal.hard_limit_c": "thermal guard limit",
    "thermal.hysteresis_c": "thermal guard limit",
    "thermal.poll_s": "thermal guard cadence",
    "thermal.max_backoff_s": "thermal guard cadence",
    "thermal.unknown_timeout_s": "thermal guard limit",
    "evaluation.baselines.threads": "OpenMP/BLAS threads of the baseline fits: the same fits "
    "up to the order of float sums",
    "evaluation.fit_replicates": "resamples of the report's scaling fits, drawn when the "
    "report reads the runs; no run computes or logs anything with it",
}


def _drop_path(data: dict[str, Any], dotted: str) -> None:
    """Remove ``a.b.c`` from nested dicts (absent parts, e.g. a None section, are fine)."""
    *parents, leaf = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(leaf, None)


def result_settings(config_data: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config (as JSON data) without the settings that cannot change results."""
    data = copy.deepcopy(dict(config_data))
    for dotted in NON_RESULT_SETTINGS:
        _drop_path(data, dotted)
    return data


def settings_hash(config: AppConfig | Mapping[str, Any]) -> str:
    """Short hash of every result-changing setting of a config (or its JSON dump)."""
    data = config_to_dict(config) if isinstance(config, AppConfig) else config
    return config_hash(result_settings(data))[:SETTINGS_HASH_CHARS]


@dataclass(frozen=True)
class RunKey:
    """Identifies one run: a cell of the experiment matrix, its seed and its settings."""

    phase: str
    tickers: str
    timescale: str
    budget: str
    horizon: int
    tier: str
    task: str
    seed: int
    settings: str
    fold: int | None = None

    def fields(self) -> dict[str, Any]:
        """The key's fields in order; ``fold`` only when a fold is set."""
        data = asdict(self)
        if self.fold is None:
            del data["fold"]
        return data

    def as_tag(self) -> str:
        """``phase=dev|tickers=SPY|...|seed=0|settings=<hash>[|fold=1]`` (MLflow tag)."""
        return "|".join(f"{name}={value}" for name, value in self.fields().items())

    def as_tags(self) -> dict[str, str]:
        """One tag per field plus ``run_key`` (the whole identity)."""
        return {**{k: str(v) for k, v in self.fields().items()}, "run_key": self.as_tag()}

    def as_path(self) -> str:
        """A folder name for the run's checkpoints (the whole identity, path-safe)."""
        return UNSAFE_PATH_CHARS.sub("_", self.as_tag().replace("|", "__"))

    @classmethod
    def from_config(cls, config: AppConfig) -> RunKey:
        """The identity a config trains: one task per threshold, ``all`` when several."""
        dataset = config.dataset
        thresholds = dataset.thresholds
        task = ALL_TASKS if len(thresholds) != 1 else f"th{thresholds[0]:g}"
        tickers = "+".join(dataset.pooled_tickers) if dataset.pooled_tickers else dataset.ticker
        return cls(
            phase=config.experiment.phase,
            tickers=tickers,
            timescale=dataset.timescale,
            budget=config.model.budget or "explicit",
            horizon=dataset.horizon,
            tier=dataset.tier,
            task=task,
            seed=config.training.seed,
            settings=settings_hash(config),
            fold=dataset.splits.fold,
        )
