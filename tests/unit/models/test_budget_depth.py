"""Shape variants for HPO: a budget with a suggested depth resolves to the width that brings
that depth closest to the budget (within tolerance), or refuses naming the shape."""

from __future__ import annotations

import pytest

from finscale.models.budget import (
    BudgetMismatchError,
    count_parameters,
    family_heads,
    parse_budget,
    resolve_architecture,
)
from finscale.models.config import ModelConfig

N_FEATURES, CONTEXT, N_TASKS = 53, 64, 4  # the cpu demo cell: a20 + VIX + macro columns


@pytest.mark.parametrize(("budget", "n_layers"), [("100k", 1), ("100k", 3), ("100k", 6),
                                                  ("2M", 2), ("2M", 12)])
def test_a_suggested_depth_gets_the_width_that_meets_the_budget(
    budget: str, n_layers: int
) -> None:
    model = ModelConfig(budget=budget, n_layers=n_layers)
    arch = resolve_architecture(model, N_FEATURES, CONTEXT, N_TASKS)
    assert arch.n_layers == n_layers
    assert arch.n_heads == family_heads(arch.d_model) and arch.d_ff == 4 * arch.d_model
    target = parse_budget(budget)
    assert abs(count_parameters(arch) - target) / target <= model.budget_tolerance


def test_deeper_at_the_same_budget_is_narrower() -> None:
    widths = [resolve_architecture(ModelConfig(budget="300k", n_layers=n), N_FEATURES, CONTEXT,
                                   N_TASKS).d_model for n in (1, 2, 4)]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3


def test_a_depth_the_budget_cannot_fit_is_refused_naming_the_shape() -> None:
    with pytest.raises(BudgetMismatchError, match=r"budget 10k .*n_layers=6"):
        resolve_architecture(ModelConfig(budget="10k", n_layers=6), N_FEATURES, CONTEXT,
                             N_TASKS)


def test_depth_without_a_budget_still_needs_a_width() -> None:
    with pytest.raises(ValueError, match=r"both model\.d_model and model\.n_layers"):
        resolve_architecture(ModelConfig(budget=None, n_layers=2), N_FEATURES, CONTEXT, N_TASKS)
