"""The config loader: layering, overrides, provenance in errors, hashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from finscale.config import ConfigError, config_hash, load_config
from finscale.config.loader import flatten, parse_override

REPO = Path(__file__).resolve().parents[3]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_base_config_loads_and_is_frozen() -> None:
    config = load_config(REPO / "configs" / "base.yaml")
    assert config.data.tickers == ("SPY", "DIA", "QQQ", "VIX")
    with pytest.raises(Exception, match="frozen"):
        config.data.overlap_days = 3  # type: ignore[misc]


def test_delta_extends_base_and_overrides_win(tmp_path: Path) -> None:
    _write(tmp_path / "base.yaml", "data:\n  overlap_days: 10\n  timeout_s: 5\n")
    delta = _write(tmp_path / "exp.yaml", "extends: base.yaml\ndata:\n  overlap_days: 20\n")
    config = load_config(delta, overrides=["data.timeout_s=7.5", "training.epochs=3"])
    assert config.data.overlap_days == 20
    assert config.data.timeout_s == 7.5
    assert config.training.epochs == 3


def test_unknown_key_names_file_and_field(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", "data:\n  overlap_dayz: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert info.value.source == str(bad.resolve())
    assert info.value.field == "data.overlap_dayz"
    assert "Extra inputs are not permitted" in info.value.reason


def test_bad_value_blames_the_layer_that_set_it(tmp_path: Path) -> None:
    _write(tmp_path / "base.yaml", "data:\n  overlap_days: 10\n")
    delta = _write(tmp_path / "exp.yaml", "extends: base.yaml\ndata:\n  overlap_days: -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(delta)
    assert info.value.source.endswith("exp.yaml")
    assert info.value.field == "data.overlap_days"
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "base.yaml", overrides=["data.overlap_days=zero"])
    assert info.value.source == "override 'data.overlap_days=zero'"


def test_malformed_yaml_missing_file_and_cycles(tmp_path: Path) -> None:
    broken = _write(tmp_path / "broken.yaml", "data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml")
    _write(tmp_path / "a.yaml", "extends: b.yaml\n")
    _write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match="circular extends"):
        load_config(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("data.overlap_days")


def test_hash_is_stable_and_sensitive(tmp_path: Path) -> None:
    a = load_config(overrides=["training.lr=0.001"])
    b = load_config(overrides=["training.lr=0.001"])
    c = load_config(overrides=["training.lr=0.002"])
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(c)
    assert flatten({"a": {"b": 1, "c": {"d": 2}}}) == {"a.b": 1, "a.c.d": 2}


def test_model_level_error_blames_the_latest_layer(tmp_path: Path) -> None:
    base = _write(tmp_path / "base.yaml", "thermal:\n  sensor: auto\n  soft_limit_c: 80\n")
    with pytest.raises(ConfigError) as info:
        load_config(base, overrides=["thermal.sensor=file"])
    assert info.value.source == "override 'thermal.sensor=file'"
    assert "file_path" in info.value.reason
