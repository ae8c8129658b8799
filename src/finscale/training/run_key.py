"""The key of a run: (phase, budget, horizon, tier, task, seed[, fold]). Finished keys are skipped.

``fold`` (the walk-forward fold a run trains on) joins the key only when set, so the keys
(and MLflow tags) of runs on the fixed splits stay what they were.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from finscale.config.schema import AppConfig

ALL_TASKS = "all"
UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9._=-]+")


@dataclass(frozen=True)
class RunKey:
    """Identifies one cell of the experiment matrix (and its seed)."""

    phase: str
    budget: str
    horizon: int
    tier: str
    task: str
    seed: int
    fold: int | None = None

    def fields(self) -> dict[str, Any]:
        """The key's fields in order; ``fold`` only when a fold is set."""
        data = asdict(self)
        if self.fold is None:
            del data["fold"]
        return data

    def as_tag(self) -> str:
        """``phase=dev|budget=100k|horizon=1|tier=a20|task=all|seed=0[|fold=1]`` (MLflow tag)."""
        return "|".join(f"{name}={value}" for name, value in self.fields().items())

    def as_tags(self) -> dict[str, str]:
        """One tag per field plus ``run_key``."""
        return {**{k: str(v) for k, v in self.fields().items()}, "run_key": self.as_tag()}

    def as_path(self) -> str:
        """A folder name for the run's checkpoints."""
        return UNSAFE_PATH_CHARS.sub("_", self.as_tag().replace("|", "__"))

    @classmethod
    def from_config(cls, config: AppConfig) -> RunKey:
        """The key a config trains: one task per threshold, ``all`` when several at once."""
        thresholds = config.dataset.thresholds
        task = ALL_TASKS if len(thresholds) != 1 else f"th{thresholds[0]:g}"
        return cls(
            phase=config.experiment.phase,
            budget=config.model.budget or "explicit",
            horizon=config.dataset.horizon,
            tier=config.dataset.tier,
            task=task,
            seed=config.training.seed,
            fold=config.dataset.splits.fold,
        )
