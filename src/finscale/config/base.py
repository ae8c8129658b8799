"""The one base class every config section derives from: frozen and strict."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """A validated, immutable settings object; unknown keys are an error, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)
