"""loss (bce/focal), focal_gamma and pos_weight each change the loss as stated."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional

from finscale.training.config import TrainingConfig
from finscale.training.losses import (
    FocalLossWithLogits,
    NoPositivesError,
    balanced_pos_weight,
    build_loss,
)

LOGITS = torch.tensor([[2.0, -1.0], [-0.5, 0.3], [4.0, -3.0]])
TARGETS = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])


def test_bce_is_bce_with_logits_on_logits() -> None:
    loss = build_loss(TrainingConfig(loss="bce"))
    expected = functional.binary_cross_entropy_with_logits(LOGITS, TARGETS)
    assert float(loss(LOGITS, TARGETS)) == pytest.approx(float(expected))


def test_focal_differs_from_bce_and_gamma_zero_equals_bce() -> None:
    bce = float(build_loss(TrainingConfig(loss="bce"))(LOGITS, TARGETS))
    focal2 = float(build_loss(TrainingConfig(loss="focal", focal_gamma=2.0))(LOGITS, TARGETS))
    focal0 = float(build_loss(TrainingConfig(loss="focal", focal_gamma=0.0))(LOGITS, TARGETS))
    focal1 = float(build_loss(TrainingConfig(loss="focal", focal_gamma=1.0))(LOGITS, TARGETS))
    assert focal0 == pytest.approx(bce)
    assert focal2 < focal1 < bce  # larger gamma down-weights easy examples more
    assert isinstance(build_loss(TrainingConfig(loss="focal")), FocalLossWithLogits)


def test_balanced_pos_weight_is_negatives_over_positives_and_changes_loss() -> None:
    positives = torch.tensor([25.0, 10.0])
    weight = balanced_pos_weight(positives, 100)
    assert weight.tolist() == pytest.approx([3.0, 9.0])
    plain = build_loss(TrainingConfig(pos_weight="none"))(LOGITS, TARGETS)
    balanced = build_loss(TrainingConfig(pos_weight="balanced"), positives, 100)(LOGITS, TARGETS)
    assert float(balanced) > float(plain)
    focal_bal = build_loss(TrainingConfig(loss="focal", pos_weight="balanced"), positives, 100)
    focal = build_loss(TrainingConfig(loss="focal"))
    assert float(focal_bal(LOGITS, TARGETS)) > float(focal(LOGITS, TARGETS))


def test_balanced_without_positives_names_the_problem() -> None:
    with pytest.raises(NoPositivesError, match="no positives"):
        balanced_pos_weight(torch.tensor([0.0, 5.0]), 10)
