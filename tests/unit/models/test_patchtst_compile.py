"""PatchTST through torch.compile (inductor, CPU): the same logits, weights and loss
trajectory as eager within float tolerance (mixed channels, the default; one layer, since
inductor's C++ build takes minutes on a small CPU and grows with the graph)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from finscale.models.patchtst import PatchTST, PatchTSTConfig

BATCH, STEPS = 8, 4


def _config(channel_mode: str) -> PatchTSTConfig:
    return PatchTSTConfig(
        n_features=3, context=16, n_tasks=2, d_model=16, n_layers=1, n_heads=2, d_ff=32,
        dropout=0.0, head_dropout=0.0, instance_norm="revin_stats", channel_mode=channel_mode,
    )


def _trajectory(model: nn.Module, params: nn.Module, x: torch.Tensor,
                y: torch.Tensor) -> tuple[list[torch.Tensor], list[float]]:
    """Logits of the first step and the loss of every step of a short AdamW run."""
    optimiser = torch.optim.AdamW(params.parameters(), lr=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    first, losses = [], []
    for _ in range(STEPS):
        logits = model(x)
        first = first or [logits.detach().clone()]
        loss = loss_fn(logits, y)
        losses.append(float(loss))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return first, losses


@pytest.mark.slow
def test_compiled_training_matches_eager(channel_mode: str = "mixed") -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    eager = PatchTST(_config(channel_mode)).train()
    twin = copy.deepcopy(eager)
    compiled = torch.compile(twin, dynamic=False)
    x = torch.randn(BATCH, 16, 3)
    y = torch.randint(0, 2, (BATCH, 2)).float()
    eager_logits, eager_losses = _trajectory(eager, eager, x, y)
    compiled_logits, compiled_losses = _trajectory(compiled, twin, x, y)
    assert torch.allclose(eager_logits[0], compiled_logits[0], atol=1e-5)
    assert compiled_losses == pytest.approx(eager_losses, abs=1e-4)
    assert eager_losses[-1] < eager_losses[0]  # it trained: the comparison is not trivial
    for (name, a), b in zip(eager.state_dict().items(), twin.state_dict().values(),
                            strict=True):
        assert torch.allclose(a, b, atol=1e-4), name
