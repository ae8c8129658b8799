"""Feature declarations and tiers: each feature is declared once, in YAML, and validated.

A tier file (``configs/features/<tier>.yaml``) holds::

    name: a50
    extends: a20.yaml          # optional: the tier it nests (its features come first)
    max_lookback: 260          # rows of warm-up after which no value is NaN
    features:
      - {name: dema_9_dist, family: ma_distance, params: {kind: dema, window: 9},
         description: "..."}

Declarations are loaded with ``yaml.safe_load``, validated by pydantic (frozen, unknown
keys forbidden) and checked against a family registry passed in by the caller, so a typo
fails at load time with the file, the feature and the reason.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from finscale.config.base import FrozenModel
from finscale.config.errors import ConfigError
from finscale.config.loader import EXTENDS_KEY, read_layer

ParamValue = int | float | str | bool
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


class FeatureDeclaration(FrozenModel):
    """One feature: its column name, the family that computes it, inputs, params, meaning."""

    name: str = Field(pattern=NAME_PATTERN, description="column name in the feature table")
    family: str = Field(description="registry key of the function that computes it")
    inputs: tuple[str, ...] = Field(("Close",), description="bar columns (or VIX) it reads")
    params: dict[str, ParamValue] = Field(default_factory=dict, description="windows etc.")
    description: str = Field(min_length=8, description="one line: what it is, why scale-free")

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value.strip():
            raise ValueError("description must be one line")
        return value.strip()


class FeatureTier(FrozenModel):
    """A named, ordered list of declarations; ``max_lookback`` bounds the warm-up rows."""

    name: str
    declarations: tuple[FeatureDeclaration, ...]
    max_lookback: int = Field(ge=0, description="after this many rows no value is NaN")

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in declaration order."""
        return tuple(d.name for d in self.declarations)

    def __len__(self) -> int:
        return len(self.declarations)


class _TierFile(FrozenModel):
    """The on-disk layout of one tier file (``extends`` is handled before validation)."""

    name: str = Field(pattern=NAME_PATTERN)
    max_lookback: int = Field(0, ge=0)
    features: tuple[FeatureDeclaration, ...] = ()


def _read_tier_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    return read_layer(path, what="tier file")


def _validated(path: Path, data: dict[str, Any]) -> _TierFile:
    try:
        return _TierFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first["loc"])
        if len(loc) >= 2 and loc[0] == "features" and isinstance(loc[1], int):
            feats = data.get("features") or []
            entry = feats[loc[1]] if loc[1] < len(feats) else None
            if isinstance(entry, dict) and "name" in entry:
                loc[1] = entry["name"]
        raise ConfigError(str(path), ".".join(str(p) for p in loc), first["msg"]) from exc


def _collect(
    path: Path, seen: tuple[Path, ...]
) -> tuple[str, list[FeatureDeclaration], int, list[tuple[Path, FeatureDeclaration]]]:
    """The validated tier at ``path`` with its ``extends`` chain: (its name, declarations
    parents first, max lookback, (file, declaration) origins for the checks)."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(str(path), EXTENDS_KEY, "circular extends")
    data, parents = _read_tier_file(path)
    declarations: list[FeatureDeclaration] = []
    origins: list[tuple[Path, FeatureDeclaration]] = []
    lookback = 0
    for parent in parents:
        _, parent_decls, parent_lookback, parent_origins = _collect(
            path.parent / parent, (*seen, path)
        )
        declarations.extend(parent_decls)
        origins.extend(parent_origins)
        lookback = max(lookback, parent_lookback)
    tier_file = _validated(path, data)
    declarations.extend(tier_file.features)
    origins.extend((path, d) for d in tier_file.features)
    return tier_file.name, declarations, max(lookback, tier_file.max_lookback), origins


def check_declarations(
    origins: list[tuple[Path, FeatureDeclaration]], families: Mapping[str, Callable[..., Any]]
) -> None:
    """Unique names, known families, params the family function accepts."""
    seen: dict[str, Path] = {}
    for path, decl in origins:
        field = f"features.{decl.name}"
        if decl.name in seen:
            other = seen[decl.name]
            raise ConfigError(str(path), field, f"duplicate feature name (also in {other})")
        seen[decl.name] = path
        function = families.get(decl.family)
        if function is None:
            raise ConfigError(str(path), f"{field}.family", f"unknown family '{decl.family}'")
        signature = inspect.signature(function)
        accepted = list(signature.parameters)[1:]
        unknown = sorted(set(decl.params) - set(accepted))
        if unknown:
            raise ConfigError(str(path), f"{field}.params",
                              f"{decl.family}: unknown params {unknown}; accepted {accepted}")
        try:
            signature.bind(None, **decl.params)
        except TypeError as exc:
            raise ConfigError(str(path), f"{field}.params", f"{decl.family}: {exc}") from exc


def load_declarations(
    path: Path, families: Mapping[str, Callable[..., Any]]
) -> tuple[str, tuple[FeatureDeclaration, ...], int]:
    """Read a tier file with its ``extends`` chain: (name, declarations, max lookback)."""
    name, declarations, lookback, origins = _collect(path, ())
    check_declarations(origins, families)
    return name, tuple(declarations), lookback
