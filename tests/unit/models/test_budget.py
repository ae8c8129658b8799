"""Budget resolver: named budgets hit within ±5% on the meta device, fast and allocation-free."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
import torch

from finscale.config import load_config
from finscale.models.budget import (
    DEPTH_SLACK,
    FF_MULT,
    NAMED_BUDGETS,
    BudgetInfeasibleError,
    BudgetMismatchError,
    check_budget,
    count_parameters,
    family_heads,
    family_layers,
    format_budget,
    parse_budget,
    resolve_architecture,
)
from finscale.models.config import ModelConfig
from finscale.models.patchtst import INSTANCE_NORMS, PatchTST, PatchTSTConfig

REPO_ROOT = Path(__file__).resolve().parents[3]
CONTEXT, N_TASKS = 80, 4
A20_FEATURES = (20, 50)  # a20 tier: ~20 market features, ~50 with VIX and macro columns
A500_FEATURES = 500
LARGE = ("2M", "20M", "200M", "2B")
SMALL = ("10k", "30k", "100k", "300k", "1M")
MODES = ("independent", "mixed")
TOLERANCE = 0.05
MIB = 2**20


def resolve(budget: str, n_features: int, mode: str, **model: object) -> PatchTSTConfig:
    return resolve_architecture(
        ModelConfig(budget=budget, channel_mode=mode, **model), n_features, CONTEXT, N_TASKS
    )


def assert_within_budget(cfg: PatchTSTConfig, budget: str) -> None:
    real = count_parameters(cfg)
    target = NAMED_BUDGETS[budget]
    assert abs(real - target) / target <= TOLERANCE, (budget, real)
    # one shape family: heads, d_ff and depth follow the width
    assert cfg.n_heads == family_heads(cfg.d_model)
    assert cfg.d_ff == FF_MULT * cfg.d_model
    assert abs(cfg.n_layers - family_layers(cfg.d_model)) <= DEPTH_SLACK


@pytest.mark.parametrize("budget", ["100k", "2M", "2b", "1.5M", "30K", 5000, "7"])
def test_parse_budget(budget: str | int) -> None:
    expected = {"100k": 100_000, "2M": 2_000_000, "2b": 2_000_000_000, "1.5M": 1_500_000,
                "30K": 30_000, 5000: 5000, "7": 7}
    assert parse_budget(budget) == expected[budget]


@pytest.mark.parametrize("bad", ["", "2G", "M2", "-5k", "two"])
def test_parse_budget_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="budget"):
        parse_budget(bad)


def test_named_budgets_round_trip() -> None:
    assert {format_budget(n) for n in NAMED_BUDGETS.values()} == set(NAMED_BUDGETS)


@pytest.mark.parametrize("instance_norm", INSTANCE_NORMS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n_features", [*A20_FEATURES, A500_FEATURES])
def test_large_budgets_within_tolerance_without_allocating(
    mode: str, n_features: int, instance_norm: str
) -> None:
    """2M..2B resolve on the meta device: seconds and no real memory (2B fp32 would be 8 GB)."""
    process = psutil.Process()
    rss_before = process.memory_info().rss
    start = time.perf_counter()
    for budget in LARGE:
        cfg = resolve(budget, n_features, mode, instance_norm=instance_norm)
        assert_within_budget(cfg, budget)
    assert time.perf_counter() - start < 20
    assert (process.memory_info().rss - rss_before) < 300 * MIB


@pytest.mark.parametrize("instance_norm", INSTANCE_NORMS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n_features", A20_FEATURES)
def test_small_budgets_within_tolerance(mode: str, n_features: int, instance_norm: str) -> None:
    for budget in SMALL:
        assert_within_budget(resolve(budget, n_features, mode, instance_norm=instance_norm), budget)


def test_two_billion_count_is_fast_and_holds_no_storage() -> None:
    cfg = resolve("2B", 50, "mixed")
    start = time.perf_counter()
    count = count_parameters(PatchTSTConfig(**{**cfg.__dict__, "dropout": 0.2}))  # uncached
    assert time.perf_counter() - start < 5
    assert count > 1.9e9
    with torch.device("meta"):
        model = PatchTST(cfg)
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("instance_norm", INSTANCE_NORMS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("head", ["pool", "flatten"])
def test_meta_count_equals_a_real_model(mode: str, head: str, instance_norm: str) -> None:
    cfg = resolve("100k", 20, mode, head=head, instance_norm=instance_norm)
    real = sum(p.numel() for p in PatchTST(cfg).parameters())
    assert count_parameters(cfg) == real


@pytest.mark.parametrize("mode", MODES)
def test_impossible_small_budget_says_why(mode: str) -> None:
    with pytest.raises(BudgetInfeasibleError, match=r"10k .*500 features.*input projection"):
        resolve("10k", A500_FEATURES, mode)


def test_flatten_head_over_many_features_is_infeasible_but_pool_fits() -> None:
    with pytest.raises(BudgetInfeasibleError, match="head='pool'"):
        resolve("100k", A500_FEATURES, "independent", head="flatten")
    assert_within_budget(resolve("100k", A500_FEATURES, "independent", head="pool"), "100k")


def test_explicit_sizes_that_miss_the_budget_refuse_to_start() -> None:
    model = ModelConfig(budget="2M", channel_mode="mixed", d_model=64, n_layers=2)
    with pytest.raises(BudgetMismatchError, match=r"budget 2M .* \(-9\d\.\d% off"):
        resolve_architecture(model, 20, CONTEXT, N_TASKS)


def test_explicit_sizes_without_budget_are_used_as_given() -> None:
    model = ModelConfig(budget=None, d_model=96, n_layers=3, n_heads=4, d_ff=200)
    cfg = resolve_architecture(model, 20, CONTEXT, N_TASKS)
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff) == (96, 3, 4, 200)
    assert check_budget(cfg, count_parameters(cfg), TOLERANCE) == count_parameters(cfg)


def test_explicit_sizes_that_meet_the_budget_pass() -> None:
    resolved = resolve("1M", 20, "mixed")
    model = ModelConfig(
        budget="1M", channel_mode="mixed", d_model=resolved.d_model, n_layers=resolved.n_layers
    )
    assert resolve_architecture(model, 20, CONTEXT, N_TASKS) == resolved


def test_incomplete_explicit_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_layers"):
        resolve_architecture(ModelConfig(budget="1M", d_model=64), 20, CONTEXT, N_TASKS)
    with pytest.raises(ValueError, match="d_model"):
        resolve_architecture(ModelConfig(budget=None), 20, CONTEXT, N_TASKS)


@pytest.mark.parametrize("budget", list(NAMED_BUDGETS))
def test_model_config_files_load_and_resolve(budget: str) -> None:
    cfg = load_config(
        REPO_ROOT / "configs" / "base.yaml",
        REPO_ROOT / "configs" / "model" / f"patchtst_{budget.lower()}.yaml",
    )
    assert parse_budget(cfg.model.budget or "") == NAMED_BUDGETS[budget]
    assert_within_budget(resolve_architecture(cfg.model, 20, CONTEXT, N_TASKS), budget)
