"""A tiny experiment matrix on SPY a20 (budgets 10k and 30k, one 2-trial study at 10k) that
the experiment tests write into their temporary folder; each test says what it changes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
BASE_CONFIG = REPO / "configs" / "base.yaml"
TINY_OVERRIDES: Mapping[str, Any] = {
    "dataset.context": 32, "dataset.include_macro": False, "dataset.thresholds": [0.01],
    "training.epochs": 2, "training.device": "cpu", "training.log_model": False,
    "thermal.sensor": "none",
}


def write_tiny_matrix(
    folder: Path, *, name: str = "tiny", seeds: int = 1,
    overrides: Mapping[str, Any] | None = None, study_overrides: Mapping[str, Any] | None = None,
    storage: str | None = None,
) -> Path:
    """Write ``<name>.yaml`` and its HPO file into ``folder``; the matrix file's path.

    ``overrides`` change the base settings of every job, ``study_overrides`` those of the
    study's trials only, ``storage`` is the study's Optuna URL (default: the workspace's).
    """
    study: dict[str, Any] = {
        "n_trials": 2, "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 2},
        "pruner": {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
    }
    if storage is not None:
        study["storage"] = storage
    hpo = folder / f"{name}-hpo.yaml"
    _dump(hpo, {
        "config": str(BASE_CONFIG), "overrides": ["training.log_model=false"], "study": study,
        "space": {"training.lr": {"type": "float", "low": 1.0e-3, "high": 3.0e-3,
                                  "log": True}},
    })
    hpo_cell: dict[str, Any] = {"by": [], "at": {"budget": "10k"}, "config": str(hpo),
                                "trials": 2}
    if study_overrides:
        hpo_cell["overrides"] = dict(study_overrides)
    matrix = folder / f"{name}.yaml"
    _dump(matrix, {
        "name": name, "phase": name, "base": str(BASE_CONFIG),
        "overrides": {**TINY_OVERRIDES, **(overrides or {})},
        "axes": {"budget": {"set": "model.budget", "values": ["10k", "30k"]}},
        "final": {"seeds": seeds}, "hpo": hpo_cell,
    })
    return matrix


def _dump(path: Path, content: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(content), sort_keys=False), encoding="utf-8")
