"""The YAML `thermal` section: which sensor, and the soft/hard limits with hysteresis."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from finscale.config.base import FrozenModel


class ThermalConfig(FrozenModel):
    """Soft limit pauses, hard limit checkpoints and stops; unknown is never normal."""

    sensor: Literal["auto", "nvml", "apple", "linux", "file", "none"] = "auto"
    file_path: Path | None = None
    soft_limit_c: float = 83.0
    hard_limit_c: float = 90.0
    hysteresis_c: float = Field(5.0, ge=0)
    poll_s: float = Field(5.0, gt=0)
    max_backoff_s: float = Field(60.0, gt=0)
    unknown_timeout_s: float = Field(300.0, gt=0)
