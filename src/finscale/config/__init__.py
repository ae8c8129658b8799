"""Typed configuration: pydantic sections, loaded from YAML with provenance."""

from finscale.config.errors import ConfigError
from finscale.config.loader import config_hash, config_to_dict, config_to_yaml, load_config
from finscale.config.schema import AppConfig

__all__ = ["AppConfig", "ConfigError", "config_hash", "config_to_dict", "config_to_yaml", "load_config"]
