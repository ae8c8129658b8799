"""lr, weight_decay, betas, warmup_steps and min_lr_ratio each change the optimiser/schedule."""

from __future__ import annotations

import itertools

import pytest
import torch

from finscale.training.optim import (
    build_optimizer,
    build_scheduler,
    lr_factor,
    split_decay_groups,
    warmup_steps,
)


def test_decay_applies_to_weights_not_biases_norms_or_embeddings(tiny_net) -> None:
    groups = split_decay_groups(tiny_net())
    assert set(groups.decay) == {"hidden.weight", "out.weight"}
    assert set(groups.no_decay) == {"pos", "norm.weight", "norm.bias", "hidden.bias", "out.bias"}


@pytest.mark.parametrize("weight_decay", [0.0, 0.5])
def test_weight_decay_shrinks_decayed_params_with_zero_grads(tiny_net, make_cfg, weight_decay):
    model = tiny_net()
    cfg = make_cfg(weight_decay=weight_decay, lr=0.1)
    optimizer = build_optimizer(model, cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    after = dict(model.named_parameters())
    expected = before["hidden.weight"] * (1 - 0.1 * weight_decay)
    assert torch.allclose(after["hidden.weight"], expected)
    assert torch.equal(after["hidden.bias"], before["hidden.bias"])  # no decay on biases
    assert torch.equal(after["norm.weight"], before["norm.weight"])  # nor on norm gains
    assert torch.equal(after["pos"], before["pos"])  # nor on embeddings


def test_lr_and_betas_reach_the_optimiser(tiny_net, make_cfg) -> None:
    optimizer = build_optimizer(tiny_net(), make_cfg(lr=3e-4, betas=(0.8, 0.95)))
    for group in optimizer.param_groups:
        assert group["lr"] == 3e-4
        assert group["betas"] == (0.8, 0.95)


def _first_step_update(model, cfg) -> torch.Tensor:
    optimizer = build_optimizer(model, cfg)
    before = model.hidden.bias.detach().clone()
    for grad in (1.0, -0.5, 0.25):
        for p in model.parameters():
            p.grad = torch.full_like(p, grad)
        optimizer.step()
    return model.hidden.bias.detach() - before


def test_betas_change_the_update(tiny_net, make_cfg) -> None:
    a = _first_step_update(tiny_net(), make_cfg(betas=(0.9, 0.999), weight_decay=0))
    b = _first_step_update(tiny_net(), make_cfg(betas=(0.5, 0.9), weight_decay=0))
    assert not torch.allclose(a, b)


def _lrs(model, cfg, total: int) -> list[float]:
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, total_steps=total)
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_is_linear_then_cosine_to_min_ratio(tiny_net, make_cfg) -> None:
    lrs = _lrs(tiny_net(), make_cfg(lr=1.0, warmup_steps=4, min_lr_ratio=0.1), total=20)
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))  # decays monotonically
    assert lr_factor(20, warmup_steps=4, total_steps=20, min_lr_ratio=0.1) == pytest.approx(0.1)


def test_warmup_steps_and_min_lr_ratio_change_the_schedule(tiny_net, make_cfg) -> None:
    short = _lrs(tiny_net(), make_cfg(lr=1.0, warmup_steps=1), total=10)
    long = _lrs(tiny_net(), make_cfg(lr=1.0, warmup_steps=5), total=10)
    assert short[0] == pytest.approx(1.0) and long[0] == pytest.approx(0.2)
    low = lr_factor(9, warmup_steps=0, total_steps=10, min_lr_ratio=0.0)
    high = lr_factor(9, warmup_steps=0, total_steps=10, min_lr_ratio=0.5)
    assert high > low
    assert lr_factor(10, warmup_steps=0, total_steps=10, min_lr_ratio=0.5) == pytest.approx(0.5)


def test_warmup_ratio_is_a_fraction_of_the_planned_steps(tiny_net, make_cfg) -> None:
    # 5% of 200 planned steps = 10 warm-up steps: lr reaches its peak at step 10, not 100
    lrs = _lrs(tiny_net(), make_cfg(lr=1.0, warmup_steps=None, warmup_ratio=0.05), total=200)
    assert lrs[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[-1] < 0.2  # the cosine followed the planned total down to near its floor
    ten_percent = _lrs(tiny_net(), make_cfg(lr=1.0, warmup_steps=None, warmup_ratio=0.1),
                       total=200)
    assert ten_percent[9] == pytest.approx(0.5)


def test_explicit_warmup_steps_win_over_the_ratio(tiny_net, make_cfg) -> None:
    cfg = make_cfg(lr=1.0, warmup_steps=4, warmup_ratio=0.5)
    assert warmup_steps(cfg, 1000) == 4
    assert warmup_steps(make_cfg(warmup_steps=None, warmup_ratio=0.05), 17 * 8) == 7
