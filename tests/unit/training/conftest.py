"""Tiny synthetic data and a tiny model for trainer tests (fast, CPU, deterministic)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from finscale.training.config import TrainingConfig

CONTEXT = 6
N_FEATURES = 3
N_TASKS = 2


class TinyNet(nn.Module):
    """(B, context, F) -> logits (B, n_tasks); has a norm, a bias and a positional parameter."""

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(CONTEXT, N_FEATURES))
        self.norm = nn.LayerNorm(N_FEATURES)
        self.hidden = nn.Linear(CONTEXT * N_FEATURES, 16)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(16, N_TASKS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x + self.pos).flatten(1)  # (B, context * F)
        return self.out(self.dropout(torch.relu(self.hidden(h))))


def synthetic(n: int, seed: int) -> TensorDataset:
    """Labels depend on the inputs, so a model can learn them (AUC well above 0.5)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, CONTEXT, N_FEATURES, generator=generator)
    signal = x[:, -1, 0] + 0.5 * x[:, -2, 1]
    y = torch.stack([(signal > 0).float(), (signal > 0.8).float()], dim=1)
    return TensorDataset(x, y)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture()
def train_data() -> TensorDataset:
    return synthetic(96, seed=1)


@pytest.fixture()
def val_data() -> TensorDataset:
    return synthetic(48, seed=2)


@pytest.fixture()
def make_cfg() -> Callable[..., TrainingConfig]:
    def make(**overrides: object) -> TrainingConfig:
        base: dict[str, object] = {
            "epochs": 3, "batch_size": 16, "warmup_steps": 2, "device": "cpu", "patience": 10,
            "lr": 1e-2,
        }
        return TrainingConfig(**{**base, **overrides})

    return make


@pytest.fixture()
def tiny_net() -> Callable[..., TinyNet]:
    def make(seed: int = 0, dropout: float = 0.1) -> TinyNet:
        torch.manual_seed(seed)
        return TinyNet(dropout)

    return make
