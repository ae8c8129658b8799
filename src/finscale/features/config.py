"""Settings of the feature engine: which tier, and when macro data becomes known."""

from __future__ import annotations

from pydantic import Field

from finscale.config.base import FrozenModel


class FeaturesConfig(FrozenModel):
    """Tier selection and macro availability lags (release date, not reference date)."""

    tier: str = "a20"
    tiers_dir: str = Field("configs/features", description="folder of tier declaration YAMLs")
    daily_macro_lag_days: int = Field(
        1, ge=0, description="business days until a daily value is known"
    )
    monthly_release_lag_days: dict[str, int] = Field(
        default_factory=lambda: {"FEDFUNDS": 32, "UNRATE": 38, "CPIAUCSL": 45},
        description="calendar days after the observation month's start until release",
    )
