"""Config errors that name the file, the field and the reason."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config could not be loaded; the message names file, field and reason."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        super().__init__(f"{source}: field '{field}': {reason}")
