"""Parameter budgets: turn a named size (10k .. 2B) and an input shape into one architecture.

The point of the study is to compare model sizes, so a run called "200M" must have about
200M parameters (an earlier study's "200M" had 6.4M). Counts are exact: they come from the
real `PatchTST` built on the ``meta`` device, which allocates no storage, so a 2B model costs
no memory and a few milliseconds.

The shape family (fixed for every budget, so sizes differ in scale only):

* ``n_layers = max(1, round(d_model / LAYER_WIDTH_RATIO))``  (depth tied to width)
* ``n_heads = max(1, ceil(d_model / MAX_HEAD_DIM))``, d_model a multiple of n_heads, so heads
  are up to 64 wide and a tiny model (d_model <= 64) has one head as wide as the model;
  widths from 256 up are also multiples of 8 (tensor-core friendly)
* ``d_ff = FF_MULT * d_model``

The resolver searches the family's width with exact counts and, because widths and depths
are discrete, also tries one layer more or fewer than the family's depth; it keeps the
candidate closest to the budget and refuses (``BudgetMismatchError``) when none is within
tolerance. Inputs with hundreds of features can make the input projection and head alone
exceed a small budget; that raises ``BudgetInfeasibleError`` saying so.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import replace
from functools import lru_cache

import torch

from finscale.models.config import ModelConfig, parse_budget
from finscale.models.patchtst import PatchTST, PatchTSTConfig

LAYER_WIDTH_RATIO = 64  # d_model per layer along the family (2B: ~34 layers of ~2200)
MAX_HEAD_DIM = 64
FF_MULT = 4
WIDTH_ALIGN = 8  # tensor-core matmuls want d_model % 8 == 0 (attention is cheap: ~11 patches)
ALIGNED_WIDTH_FROM = 256  # widths from here up (GPU budgets) stay aligned
MIN_D_MODEL = 16  # narrower models are not transformers worth comparing
MAX_D_MODEL = 16384
DEPTH_SLACK = 2  # layers the resolver may deviate from the family depth (discrete grid)
DEFAULT_TOLERANCE = 0.05
PREFERRED_ERROR = 0.04  # candidates within this count error are ranked with their depth
DEPTH_WEIGHT = 0.5  # cost of 1 (log) unit of depth off the family vs 1 unit of count error

NAMED_BUDGETS: dict[str, int] = {
    "10k": 10_000,
    "30k": 30_000,
    "100k": 100_000,
    "300k": 300_000,
    "1M": 1_000_000,
    "2M": 2_000_000,
    "20M": 20_000_000,
    "200M": 200_000_000,
    "2B": 2_000_000_000,
}


class BudgetMismatchError(ValueError):
    """A model's real parameter count misses its named budget by more than the tolerance."""


class BudgetInfeasibleError(BudgetMismatchError):
    """No member of the shape family can meet the budget for this input shape."""


def format_budget(n: int) -> str:
    """2_000_000 -> '2M'; inverse of parse_budget for round numbers, else the digits."""
    for suffix, scale in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


def count_parameters(cfg: PatchTSTConfig) -> int:
    """Exact parameter count of ``PatchTST(cfg)``, built on the meta device (no storage)."""
    return _count_cached(cfg)


@lru_cache(maxsize=4096)
def _count_cached(cfg: PatchTSTConfig) -> int:
    with torch.device("meta"):
        model = PatchTST(cfg)
    return sum(p.numel() for p in model.parameters())


def check_budget(
    cfg: PatchTSTConfig, budget: int | str, tolerance: float = DEFAULT_TOLERANCE
) -> int:
    """Return the real count; raise BudgetMismatchError if it misses ``budget`` by > tolerance."""
    target = parse_budget(budget)
    real = count_parameters(cfg)
    off = (real - target) / target
    if abs(off) > tolerance:
        raise BudgetMismatchError(
            f"model budget {format_budget(target)} ({target:,} parameters) but the model has "
            f"{real:,} ({off:+.1%} off, tolerance ±{tolerance:.0%}): d_model={cfg.d_model}, "
            f"n_layers={cfg.n_layers}, n_heads={cfg.n_heads}, d_ff={cfg.d_ff}, "
            f"channel_mode={cfg.channel_mode}, head={cfg.head}, n_features={cfg.n_features}"
        )
    return real


def family_layers(d_model: int) -> int:
    """Depth the shape family ties to a width."""
    return max(1, round(d_model / LAYER_WIDTH_RATIO))


def family_heads(d_model: int) -> int:
    """Heads the shape family gives a width (head_dim <= 64; one head when narrow)."""
    return max(1, math.ceil(d_model / MAX_HEAD_DIM))


def is_family_width(d_model: int) -> bool:
    """A width splits evenly into its heads; wide (GPU) models keep d_model a multiple of 8."""
    if d_model % family_heads(d_model):
        return False
    return d_model < ALIGNED_WIDTH_FROM or d_model % WIDTH_ALIGN == 0


@lru_cache(maxsize=1)
def family_widths() -> tuple[int, ...]:
    """Every width the family allows, ascending."""
    return tuple(d for d in range(MIN_D_MODEL, MAX_D_MODEL + 1) if is_family_width(d))


def _shape(base: PatchTSTConfig, d_model: int, n_layers: int) -> PatchTSTConfig:
    return replace(
        base, d_model=d_model, n_layers=n_layers, n_heads=family_heads(d_model),
        d_ff=FF_MULT * d_model,
    )


def _count(base: PatchTSTConfig, d_model: int, n_layers: int) -> int:
    """Exact count, using that the model is affine in depth: one- and two-layer meta builds."""
    one = count_parameters(_shape(base, d_model, 1))
    per_block = count_parameters(_shape(base, d_model, 2)) - one
    return one + (n_layers - 1) * per_block


def _width_for(base: PatchTSTConfig, n_layers: int, target: int) -> list[int]:
    """The family widths bracketing ``target`` at a fixed depth (count is monotone in width)."""
    widths = family_widths()
    lo, hi = 0, len(widths)
    while lo < hi:  # first width whose count reaches the target
        mid = (lo + hi) // 2
        if _count(base, widths[mid], n_layers) < target:
            lo = mid + 1
        else:
            hi = mid
    return [widths[i] for i in (lo - 1, lo) if 0 <= i < len(widths)]


def _family_depths(base: PatchTSTConfig, target: int) -> set[int]:
    """Depths of the two family members bracketing ``target``, each widened by DEPTH_SLACK."""
    widths = family_widths()
    index = bisect_left(
        range(len(widths)), target, key=lambda i: _count(base, widths[i], family_layers(widths[i]))
    )
    brackets = [widths[i] for i in (index - 1, index) if 0 <= i < len(widths)]
    return {
        max(1, family_layers(d) + delta)
        for d in brackets
        for delta in range(-DEPTH_SLACK, DEPTH_SLACK + 1)
    }


def _infeasible_message(base: PatchTSTConfig, target: int, smallest: int) -> str:
    embed_in = base.patch_len if base.channel_mode == "independent" else (
        base.n_features * base.patch_len
    )
    return (
        f"budget {format_budget(target)} ({target:,}) cannot be met for {base.n_features} features "
        f"(context {base.context}, patch {base.patch_len}/{base.stride}, "
        f"channel_mode={base.channel_mode}, head={base.head}, n_tasks={base.n_tasks}): the "
        f"smallest family member (d_model={MIN_D_MODEL}, 1 layer) already has {smallest:,} "
        f"parameters, dominated by the input projection ({embed_in} inputs per token) and the "
        f"head; use a larger budget, fewer features, channel_mode='mixed' or head='pool'"
    )


def resolve_budget(base: PatchTSTConfig, budget: int | str, tolerance: float) -> PatchTSTConfig:
    """Family member of ``base``'s input shape closest to ``budget``; checked within tolerance."""
    target = parse_budget(budget)
    smallest = _count(base, MIN_D_MODEL, 1)
    if smallest > target * (1 + tolerance):
        raise BudgetInfeasibleError(_infeasible_message(base, target, smallest))
    depths = _family_depths(base, target)
    candidates = [
        (d, n)
        for n in sorted(depths)
        for d in _width_for(base, n, target)
        if abs(n - family_layers(d)) <= DEPTH_SLACK  # stay in the family's depth band
    ]
    if not candidates:
        raise BudgetInfeasibleError(
            f"budget {format_budget(target)} ({target:,}) is beyond the family's widths "
            f"({MIN_D_MODEL}..{MAX_D_MODEL}) for {base.n_features} features"
        )

    def error(candidate: tuple[int, int]) -> float:
        return abs(_count(base, *candidate) - target) / target

    def off_family(candidate: tuple[int, int]) -> float:
        d_model, n_layers = candidate  # log-distance from the family's (continuous) depth
        return abs(math.log(n_layers / max(1.0, d_model / LAYER_WIDTH_RATIO)))

    # trade count error against leaving the family's depth (both relative); only when no
    # shape is within PREFERRED_ERROR take the closest count overall
    near = [c for c in candidates if error(c) <= PREFERRED_ERROR]
    if near:
        d_model, n_layers = min(near, key=lambda c: error(c) + DEPTH_WEIGHT * off_family(c))
    else:
        d_model, n_layers = min(candidates, key=lambda c: (error(c), off_family(c)))
    resolved = _shape(base, d_model, n_layers)
    check_budget(resolved, target, tolerance)  # full meta build: the count that is logged
    return resolved


def resolve_depth(
    base: PatchTSTConfig, budget: int | str, tolerance: float, n_layers: int
) -> PatchTSTConfig:
    """The family width that brings ``n_layers`` layers closest to ``budget``: a shape
    variant (deeper and narrower, or shallower and wider) of the same size, as HPO suggests
    it. Refuses (``BudgetMismatchError``, naming the shape) when no width fits at that depth."""
    target = parse_budget(budget)
    widths = _width_for(base, n_layers, target)
    d_model = min(widths, key=lambda d: abs(_count(base, d, n_layers) - target))
    resolved = _shape(base, d_model, n_layers)
    check_budget(resolved, target, tolerance)
    return resolved


def _input_shape(model: ModelConfig, n_features: int, context: int, n_tasks: int) -> PatchTSTConfig:
    """The config with every non-size field set; sizes are placeholders the resolver replaces."""
    return PatchTSTConfig(
        n_features=n_features, context=context, n_tasks=n_tasks,
        d_model=MIN_D_MODEL, n_layers=1, n_heads=1, d_ff=FF_MULT * MIN_D_MODEL,
        patch_len=model.patch_len, stride=model.stride, pad_end=model.pad_end,
        channel_mode=model.channel_mode, head=model.head, dropout=model.dropout,
        head_dropout=model.head_dropout, instance_norm=model.instance_norm,
        revin_affine=model.revin_affine,
    )


def resolve_architecture(
    model: ModelConfig, n_features: int, context: int, n_tasks: int
) -> PatchTSTConfig:
    """Turn the YAML ``model`` section and the input shape into the PatchTST to build.

    * budget set, no explicit sizes: the family member closest to the budget (±tolerance).
    * budget and n_layers set, no d_model: the width at that depth closest to the budget
      (±tolerance; ``resolve_depth``).
    * explicit d_model + n_layers (n_heads, d_ff default to the family's): used as given;
      if a budget is also set, the real count must meet it or BudgetMismatchError is raised.
    """
    base = _input_shape(model, n_features, context, n_tasks)
    explicit = model.d_model is not None or model.n_layers is not None
    if not explicit:
        if model.n_heads is not None or model.d_ff is not None:
            raise ValueError("model.n_heads / model.d_ff need explicit model.d_model and n_layers")
        if model.budget is None:
            raise ValueError("model.budget is None: give model.d_model and model.n_layers")
        return resolve_budget(base, model.budget, model.budget_tolerance)
    if model.d_model is None and model.n_layers is not None and model.budget is not None:
        if model.n_heads is not None or model.d_ff is not None:
            raise ValueError("model.n_heads / model.d_ff need explicit model.d_model too")
        return resolve_depth(base, model.budget, model.budget_tolerance, model.n_layers)
    if model.d_model is None or model.n_layers is None:
        raise ValueError("explicit sizes need both model.d_model and model.n_layers")
    cfg = replace(
        base, d_model=model.d_model, n_layers=model.n_layers,
        n_heads=model.n_heads if model.n_heads is not None else family_heads(model.d_model),
        d_ff=model.d_ff if model.d_ff is not None else FF_MULT * model.d_model,
    )
    if model.budget is not None:
        check_budget(cfg, model.budget, model.budget_tolerance)
    return cfg
