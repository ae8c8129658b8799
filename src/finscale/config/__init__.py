"""Typed configuration: pydantic sections, loaded from YAML with provenance.

The names below are loaded lazily (PEP 562): each area's ``config.py`` imports
``finscale.config.base``, and the root schema imports every area's section, so an eager
import of the loader here would make importing any section first a circular import.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finscale.config.errors import ConfigError
    from finscale.config.loader import config_hash, config_to_dict, config_to_yaml, load_config
    from finscale.config.schema import AppConfig

_EXPORTS = {
    "AppConfig": "finscale.config.schema",
    "ConfigError": "finscale.config.errors",
    "config_hash": "finscale.config.loader",
    "config_to_dict": "finscale.config.loader",
    "config_to_yaml": "finscale.config.loader",
    "load_config": "finscale.config.loader",
}

__all__ = [
    "AppConfig",
    "ConfigError",
    "config_hash",
    "config_to_dict",
    "config_to_yaml",
    "load_config",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'finscale.config' has no attribute {name!r}")
