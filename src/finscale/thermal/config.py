"""The YAML `thermal` section: which sensor, and the soft/hard limits with hysteresis."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

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

    @model_validator(mode="after")
    def _file_sensor_has_a_path(self) -> ThermalConfig:
        """``sensor: file`` without ``file_path`` fails at load, not when training starts."""
        if self.sensor == "file" and self.file_path is None:
            raise ValueError("thermal.sensor=file needs thermal.file_path")
        return self
