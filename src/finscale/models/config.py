"""The YAML `model` section: a named parameter budget plus the fixed shape choices."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from finscale.config.base import FrozenModel

BUDGET_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMbB]?)\s*$")
BUDGET_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9}


def parse_budget(budget: str | int) -> int:
    """'100k' -> 100_000, '2M' -> 2_000_000, '2B' -> 2_000_000_000 (case-insensitive)."""
    if isinstance(budget, int):
        if budget < 1:
            raise ValueError(f"budget must be positive, got {budget}")
        return budget
    match = BUDGET_PATTERN.match(budget)
    if match is None:
        raise ValueError(
            f"budget {budget!r} is not a number with optional suffix k, M or B (e.g. '2M')"
        )
    value = round(float(match.group(1)) * BUDGET_SUFFIX[match.group(2).lower()])
    if value < 1:
        raise ValueError(f"budget {budget!r} must be at least 1 parameter")
    return value


class ModelConfig(FrozenModel):
    """PatchTST settings; width and depth come from the budget resolver unless given."""

    budget: str | None = Field("100k", description="named budget (10k..2B); None: explicit sizes")
    budget_tolerance: float = Field(0.05, gt=0, lt=1)
    patch_len: int = Field(8, ge=1)
    stride: int = Field(8, ge=1)
    pad_end: bool = True
    channel_mode: Literal["independent", "mixed"] = "mixed"
    head: Literal["pool", "flatten"] = Field(
        "pool", description="pool: mean over patches; flatten: all patch tokens into the head"
    )
    d_model: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    d_ff: int | None = None
    dropout: float = Field(0.1, ge=0, lt=1)
    head_dropout: float = Field(0.1, ge=0, lt=1)
    instance_norm: Literal["none", "revin", "revin_stats"] = Field(
        "none", description="none: the windows as the dataset normalised them (train-only "
        "statistics, so the level stays); revin: each window normalised per feature (its level "
        "is lost); revin_stats: normalised, and each window's per-feature mean and log-std go "
        "to the head. Default: the best test AUC in benchmarks/instance_norm.py"
    )
    revin_affine: bool = Field(True, description="learnable per-feature affine after RevIN")

    @field_validator("budget", mode="before")
    @classmethod
    def _budget_is_a_count(cls, budget: object) -> object:
        """Accept 100000 as well as '100k'; a typo or a zero fails at load, not mid-run."""
        if isinstance(budget, int) and not isinstance(budget, bool):
            budget = str(budget)
        if not isinstance(budget, str):
            return budget  # None, or a type pydantic rejects with its own message
        parse_budget(budget)  # raises ValueError naming the bad value
        return budget
