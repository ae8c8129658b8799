"""Load the typed config from YAML: a base file, experiment deltas and key=value overrides.

A file may name the files it builds on with ``extends:`` (a path or a list, relative to
the file). Later layers win key by key (deep merge). Every leaf remembers which file or
override set it, so a validation error names the file that holds the bad value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from finscale.config.errors import ConfigError
from finscale.config.redact import redact_data
from finscale.config.schema import AppConfig

EXTENDS_KEY = "extends"
DEFAULTS_SOURCE = "<defaults>"


def read_yaml_mapping(path: Path, what: str = "file") -> dict[str, Any]:
    """Parse a YAML file whose top level is a mapping; errors name the file and reason."""
    if not path.is_file():
        raise ConfigError(str(path), "-", f"{what} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "-", f"not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "-", f"top level must be a mapping, got {type(data).__name__}")
    return data


def read_layer(path: Path, what: str = "file") -> tuple[dict[str, Any], list[str]]:
    """A YAML layer and the files it ``extends`` (relative paths, in order)."""
    data = read_yaml_mapping(path, what)
    parents = data.pop(EXTENDS_KEY, [])
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise ConfigError(str(path), EXTENDS_KEY, "must be a path or a list of paths")
    return data, parents


def _merge(
    base: dict[str, Any], layer: Mapping[str, Any], origin: dict[str, str], source: str, prefix: str
) -> None:
    """Deep-merge ``layer`` into ``base`` in place, recording the source of every leaf."""
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            # recurse even into a fresh section, so every leaf records the layer that set it
            if not isinstance(base.get(key), dict):
                base[key] = {}
            _merge(base[key], value, origin, source, f"{dotted}.")
        else:
            base[key] = value
            # re-insert so the origin map lists keys in the order they were last set: a
            # model-level error then blames the latest layer that touched that section
            origin.pop(dotted, None)
            origin[dotted] = source


def _load_layers(
    path: Path, merged: dict[str, Any], origin: dict[str, str], seen: tuple[Path, ...]
) -> None:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(str(path), EXTENDS_KEY, f"circular extends: {chain}")
    data, parents = read_layer(path)
    for parent in parents:
        _load_layers(path.parent / parent, merged, origin, (*seen, path))
    _merge(merged, data, origin, str(path), "")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value``; the value is parsed as YAML (numbers, lists, booleans)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}'", "-", "expected key=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override '{text}'", "-", "empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}'", key, f"value is not valid YAML: {exc}") from exc
    return parts, value


def _apply_override(merged: dict[str, Any], origin: dict[str, str], text: str) -> None:
    parts, value = parse_override(text)
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    _merge(merged, nested, origin, f"override '{text}'", "")


def _source_of(loc: Sequence[Any], origin: Mapping[str, str]) -> str:
    """The layer that set the field at ``loc`` (or its closest set parent)."""
    parts = [str(p) for p in loc]
    for end in range(len(parts), 0, -1):
        dotted = ".".join(parts[:end])
        if dotted in origin:
            return origin[dotted]
        # a child of this key was set somewhere: blame that layer
        children = [src for key, src in origin.items() if key.startswith(dotted + ".")]
        if children:
            return children[-1]
    return DEFAULTS_SOURCE


def build_config(merged: dict[str, Any], origin: Mapping[str, str]) -> AppConfig:
    """Validate a merged mapping; the first error names its file, field and reason."""
    try:
        return AppConfig.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first["loc"])
        field = ".".join(str(p) for p in loc) or "-"
        raise ConfigError(_source_of(loc, origin), field, first["msg"]) from exc


def load_config(
    *paths: str | Path, overrides: Sequence[str] = ()
) -> AppConfig:
    """Load and validate: files in order (each with its ``extends``), then overrides."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in paths:
        _load_layers(Path(path), merged, origin, ())
    for text in overrides:
        _apply_override(merged, origin, text)
    return build_config(merged, origin)


def config_to_dict(config: AppConfig) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (paths as strings)."""
    return config.model_dump(mode="json")


def config_hash(config: AppConfig | Mapping[str, Any] | Any) -> str:
    """A stable 16-hex-digit hash of a config or any pydantic model / mapping."""
    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def config_to_yaml(config: AppConfig) -> str:
    """The resolved config as YAML, for run artifacts and checkpoints: credentials in store
    URLs and secret-named keys are masked (this text leaves the process)."""
    return yaml.safe_dump(redact_data(config_to_dict(config)), sort_keys=False)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys (for MLflow params)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat
