"""Losses on LOGITS: BCEWithLogits (optional balanced pos_weight) or focal loss.

The model never applies a sigmoid; these losses take raw logits. The focal term uses
p_t = exp(-BCE), which equals the probability of the true class without a second sigmoid.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from finscale.training.config import TrainingConfig


class NoPositivesError(ValueError):
    """pos_weight=balanced needs at least one positive and one negative per task."""


def balanced_pos_weight(positives: torch.Tensor, total: int) -> torch.Tensor:
    """negatives / positives per task, from TRAIN labels only."""
    positives = positives.to(torch.float64)
    negatives = total - positives
    if bool((positives <= 0).any()) or bool((negatives <= 0).any()):
        raise NoPositivesError(
            f"pos_weight=balanced: a task has no positives or no negatives in train "
            f"(positives per task {positives.tolist()} of {total})"
        )
    return (negatives / positives).to(torch.float32)


class FocalLossWithLogits(nn.Module):
    """Focal loss (Lin et al.): BCE down-weighted by (1 - p_t)^gamma for easy examples."""

    def __init__(self, gamma: float, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # logits, targets: (B, n_tasks)
        plain = functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        p_true = torch.exp(-plain)  # probability assigned to the true class
        weighted = functional.binary_cross_entropy_with_logits(
            logits, targets, reduction="none", pos_weight=self.pos_weight
        )
        return ((1.0 - p_true) ** self.gamma * weighted).mean()


def build_loss(
    cfg: TrainingConfig, train_positives: torch.Tensor | None = None, train_total: int = 0
) -> nn.Module:
    """The configured loss; ``pos_weight=balanced`` needs the train positives per task."""
    pos_weight: torch.Tensor | None = None
    if cfg.pos_weight == "balanced":
        if train_positives is None:
            raise ValueError("pos_weight=balanced needs train label counts")
        pos_weight = balanced_pos_weight(train_positives, train_total)
    if cfg.loss == "focal":
        return FocalLossWithLogits(cfg.focal_gamma, pos_weight)
    return nn.BCEWithLogitsLoss(pos_weight=pos_weight)
