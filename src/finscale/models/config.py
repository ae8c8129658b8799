"""The YAML `model` section: a named parameter budget plus the fixed shape choices."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from finscale.config.base import FrozenModel


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
    revin: bool = True
    revin_affine: bool = True
