"""AdamW with decoupled weight decay on weights only, and linear warm-up then cosine decay.

Why weight decay skips biases, norm gains and embeddings: decay is meant to limit the size
of the linear maps that carry capacity. Pulling a LayerNorm/RevIN gain toward zero only
rescales activations (the next layer undoes it), pulling a bias toward zero shifts outputs
without regularising anything, and decaying positional/lookup embeddings erases position
information that each row receives few gradient updates to restore.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from finscale.training.config import TrainingConfig

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.GroupNorm,
    nn.RMSNorm,
)
EMBEDDING_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding,)
# parameters registered directly on a module (not inside nn.Embedding) that are embeddings
EMBEDDING_PARAM_NAMES: frozenset[str] = frozenset(
    {"pos", "pos_embed", "pos_embedding", "positional_embedding", "cls_token"}
)


@dataclass(frozen=True)
class ParamGroups:
    """Names of the parameters that get weight decay and those that do not."""

    decay: list[str]
    no_decay: list[str]


def split_decay_groups(model: nn.Module) -> ParamGroups:
    """Weights (matrices of linear/attention/conv layers) decay; biases, norms, embeddings not."""
    decay: list[str] = []
    no_decay: list[str] = []
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            full = f"{module_name}.{param_name}" if module_name else param_name
            is_embedding = (
                isinstance(module, EMBEDDING_TYPES) or param_name in EMBEDDING_PARAM_NAMES
            )
            if isinstance(module, NORM_TYPES) or is_embedding or param.ndim < 2:
                no_decay.append(full)
            else:
                decay.append(full)
    return ParamGroups(decay=decay, no_decay=no_decay)


def build_optimizer(model: nn.Module, cfg: TrainingConfig) -> torch.optim.AdamW:
    """AdamW(lr, betas) with ``cfg.weight_decay`` on the decay group and 0 on the rest."""
    groups = split_decay_groups(model)
    params = dict(model.named_parameters())
    return torch.optim.AdamW(
        [
            {"params": [params[n] for n in groups.decay], "weight_decay": cfg.weight_decay},
            {"params": [params[n] for n in groups.no_decay], "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=cfg.betas,
    )


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the base lr at optimiser step ``step`` (0-based).

    Linear warm-up from lr/warmup to lr over ``warmup_steps``, then cosine from lr down to
    ``min_lr_ratio * lr`` at ``total_steps`` (held there afterwards).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr_ratio + (1.0 - min_lr_ratio) * cosine


def warmup_steps(cfg: TrainingConfig, total_steps: int) -> int:
    """``warmup_steps`` when set, else ``warmup_ratio`` of the planned total steps.

    A fixed step count does not scale with the run: 100 steps were 6 epochs of SPY at batch
    256, so short runs spent their best epochs inside warm-up. A fraction of the plan does.
    """
    if cfg.warmup_steps is not None:
        return cfg.warmup_steps
    return round(cfg.warmup_ratio * total_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainingConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepping once per optimiser step (its state holds only the step count);
    the cosine ends at ``total_steps``, the planned number of optimiser steps."""
    warmup = warmup_steps(cfg, total_steps)

    def factor(step: int) -> float:
        return lr_factor(
            step,
            warmup_steps=warmup,
            total_steps=total_steps,
            min_lr_ratio=cfg.min_lr_ratio,
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
