"""Run identity: every config field is either hashed (changing it changes the identity) or on
the explicit ``NON_RESULT_SETTINGS`` list (changing it does not). Walks the whole schema."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from finscale.config import AppConfig, load_config
from finscale.config.loader import config_to_dict
from finscale.training.run_key import NON_RESULT_SETTINGS, RunKey, settings_hash

REPO = Path(__file__).resolve().parents[3]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``Model`` or ``Model | None``, else None."""
    candidates = [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        candidates = list(typing.get_args(annotation))
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def schema_leaves(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Dotted paths of every leaf field of a config schema (nested models walked)."""
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is None:
            yield f"{prefix}{name}"
        else:
            yield from schema_leaves(nested, f"{prefix}{name}.")


def _perturbed(value: Any) -> Any:
    """A different JSON value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [*value, value[0]] if value else ["x"]
    if isinstance(value, dict):
        return {**value, "x": 1}
    return "x"  # None


def _with_change(data: dict[str, Any], dotted: str) -> dict[str, Any]:
    """A copy of the config JSON with one leaf changed (a None section filled with defaults)."""
    import copy

    out = copy.deepcopy(data)
    *parents, leaf = dotted.split(".")
    node, model = out, AppConfig
    for part in parents:
        model = _nested_model(model.model_fields[part].annotation)  # type: ignore[assignment]
        if node.get(part) is None:
            node[part] = model().model_dump(mode="json")  # type: ignore[misc]
        node = node[part]
    node[leaf] = _perturbed(node.get(leaf))
    return out


LEAVES = sorted(schema_leaves(AppConfig))


def test_the_schema_walk_finds_every_section() -> None:
    sections = {leaf.split(".")[0] for leaf in LEAVES}
    assert sections == set(AppConfig.model_fields)
    assert len(LEAVES) > 80  # guard: the walk did not stop at the top level
    assert "dataset.splits.walk_forward.val_days" in LEAVES


def test_non_result_list_names_only_real_fields() -> None:
    stale = set(NON_RESULT_SETTINGS) - set(LEAVES)
    assert not stale, f"NON_RESULT_SETTINGS names fields the schema lacks: {sorted(stale)}"


@pytest.mark.parametrize("leaf", LEAVES)
def test_every_field_is_hashed_or_listed(leaf: str) -> None:
    base = config_to_dict(AppConfig())
    changed = settings_hash(_with_change(base, leaf)) != settings_hash(base)
    if leaf in NON_RESULT_SETTINGS:
        assert not changed, f"{leaf} is on NON_RESULT_SETTINGS but changes the identity"
    else:
        assert changed, (f"{leaf} changes no identity: hash it, or put it on "
                         "NON_RESULT_SETTINGS with the reason it cannot change a result")


def test_runs_differing_only_in_include_vix_never_share_a_key() -> None:
    base = REPO / "configs" / "base.yaml"
    with_vix = RunKey.from_config(load_config(base, overrides=["dataset.include_vix=true"]))
    without = RunKey.from_config(load_config(base, overrides=["dataset.include_vix=false"]))
    assert with_vix.as_tag() != without.as_tag()
    assert with_vix.as_path() != without.as_path()
    assert with_vix.settings != without.settings


def test_a_non_result_setting_keeps_the_key() -> None:
    base = REPO / "configs" / "base.yaml"
    one = RunKey.from_config(load_config(base, overrides=["training.log_model=false"]))
    two = RunKey.from_config(load_config(base, overrides=["training.log_model=true"]))
    assert one == two


def test_readable_fields_name_tickers_timescale_and_pooled_sets() -> None:
    base = REPO / "configs" / "base.yaml"
    key = RunKey.from_config(load_config(base))
    assert key.tickers == "SPY" and key.timescale == "daily"
    pooled = RunKey.from_config(load_config(
        base, overrides=["dataset.pooled_tickers=[SPY, DIA, QQQ]"]))
    assert pooled.tickers == "SPY+DIA+QQQ"
    assert pooled.as_tag().startswith("phase=dev|tickers=SPY+DIA+QQQ|timescale=daily|")
    assert "+" in pooled.as_path()
