"""Settings of the feature engine: which tier, and when VIX and macro data become known."""

from __future__ import annotations

from pydantic import Field

from finscale.config.base import FrozenModel

# The VIX closes at 16:15 New York time, a quarter hour after SPY: its close of day t is
# first knowable at the close of the next session. The library functions default to this
# too, so a caller that forgets the setting never joins a value from after the close.
DEFAULT_VIX_LAG_SESSIONS = 1


class FeaturesConfig(FrozenModel):
    """Tier selection, the VIX's session lag and macro availability lags (release date,
    not reference date)."""

    tier: str = "a20"
    tiers_dir: str = Field("configs/features", description="folder of tier declaration YAMLs")
    vix_lag_sessions: int = Field(
        DEFAULT_VIX_LAG_SESSIONS, ge=0,
        description="VIX sessions between a VIX close and the first target close that may use "
                    "it: 1 = strictly before the bar's date (knowable at SPY's 16:00 close), "
                    "0 = the same date (uses the VIX's 16:15 close: 15 minutes of lookahead)",
    )
    daily_macro_lag_days: int = Field(
        1, ge=0, description="business days until a daily value is known"
    )
    monthly_release_lag_days: dict[str, int] = Field(
        default_factory=lambda: {"FEDFUNDS": 32, "UNRATE": 38, "CPIAUCSL": 45},
        description="calendar days after the observation month's start until release, for "
                    "series stored without release dates (vintages)",
    )
