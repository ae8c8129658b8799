"""Tier files: exact nested counts, unique names, descriptions, and clear load errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from finscale.config.errors import ConfigError
from finscale.features.engine import describe_tier, load_tier, needs_vix
from finscale.features.macro import load_macro_tier
from finscale.features.vix import load_vix_tier

A_TIERS = {"a20": 20, "a50": 50, "a100": 100, "a200": 200, "a250": 250, "a500": 500}
A20_NAMES = (
    "dema_9_dist", "dema_10_dist", "dema_20_dist", "dema_25_dist", "dema_90_dist",
    "sma_12_dist", "sma_50_dist", "sma_100_dist", "sma_200_dist", "rsi_14", "rsi_14_weekly",
    "stochrsi_k_14_5_3", "stochrsi_k_14_5_3_weekly", "macd_12_26_9", "obv_z_20", "adosc_3_10",
    "atr_14_frac", "adx_14", "bb_pct_b_20_2", "vwap_20_dist",
)
MAX_WARMUP_ROWS = 260


@pytest.mark.parametrize(("name", "count"), A_TIERS.items())
def test_tier_has_exact_count_and_unique_names(tiers_dir: Path, name: str, count: int) -> None:
    tier = load_tier(name, tiers_dir)
    assert tier.name == name
    assert len(tier.names) == count
    assert len(set(tier.names)) == count
    assert tier.max_lookback <= MAX_WARMUP_ROWS
    assert all(len(d.description) >= 8 for d in tier.declarations)


def test_tiers_are_nested_prefixes(tiers_dir: Path) -> None:
    tiers = [load_tier(name, tiers_dir) for name in A_TIERS]
    for smaller, larger in itertools.pairwise(tiers):
        assert larger.names[: len(smaller)] == smaller.names
        assert larger.max_lookback >= smaller.max_lookback


def test_a20_is_the_reference_set_without_vix(tiers_dir: Path) -> None:
    tier = load_tier("a20", tiers_dir)
    assert tier.names == A20_NAMES
    assert not needs_vix(tier)
    assert needs_vix(load_tier("a50", tiers_dir))


def test_vix_and_macro_tiers(tiers_dir: Path) -> None:
    assert len(load_vix_tier(tiers_dir)) == 8
    macro = load_macro_tier(tiers_dir)
    series = {d.params["series"] for d in macro.declarations}
    assert {"DGS10", "DGS2", "T10Y2Y", "FEDFUNDS", "UNRATE", "CPIAUCSL", "BAMLH0A0HYM2"} <= series


def test_describe_lists_every_feature(tiers_dir: Path) -> None:
    rows = describe_tier(load_tier("a100", tiers_dir))
    assert len(rows) == 100
    assert rows[0]["name"] == "dema_9_dist" and "DEMA" in rows[0]["description"]
    assert rows[0]["params"] == "kind=dema, window=9"


def _write(folder: Path, text: str) -> Path:
    (folder / "bad.yaml").write_text(text, encoding="utf-8")
    return folder


GOOD = "{name: r1, family: log_return, params: {window: 1}, description: one-bar log return}"


@pytest.mark.parametrize(
    ("feature", "field", "reason"),
    [
        ("{name: r1, family: nope, description: a bad family here}", "features.r1.family",
         "unknown family 'nope'"),
        ("{name: r1, family: log_return, params: {windw: 3}, description: misspelt param}",
         "features.r1.params", "windw"),
        ("{name: r1, family: log_return, params: {window: 1}, description: x, colour: red}",
         "features.r1", ""),
        ("{name: R1, family: log_return, params: {window: 1}, description: bad name case}",
         "features.R1.name", "pattern"),
        (GOOD + "\n  - " + GOOD, "features.r1", "duplicate"),
    ],
)
def test_bad_declaration_names_file_field_reason(
    tmp_path: Path, feature: str, field: str, reason: str
) -> None:
    folder = _write(tmp_path, f"name: bad\nfeatures:\n  - {feature}\n")
    with pytest.raises(ConfigError) as info:
        load_tier("bad", folder)
    assert info.value.source.endswith("bad.yaml")
    assert info.value.field.startswith(field)
    assert reason in info.value.reason


def test_cross_asset_feature_must_list_vix(tmp_path: Path) -> None:
    folder = _write(tmp_path, "name: bad\nfeatures:\n  - {name: v, family: vix_level, "
                              "inputs: [Close], description: VIX without VIX input}\n")
    with pytest.raises(ConfigError, match="VIX"):
        load_tier("bad", folder)


def test_missing_tier_and_circular_extends(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_tier("nothing", tmp_path)
    (tmp_path / "loop.yaml").write_text("name: loop\nextends: loop.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="circular"):
        load_tier("loop", tmp_path)
