"""Collapse is judged per task: a model that outputs each task's base rate and nothing else
is collapsed, although its probabilities pooled over tasks spread widely."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from finscale.config import AppConfig
from finscale.training.config import TrainingConfig
from finscale.training.metrics import collapsed_tasks, task_spread
from finscale.training.run import collapse_tags
from finscale.training.trainer import Trainer
from tests.unit.training.conftest import TinyNet, synthetic

CFG = {"epochs": 6, "batch_size": 16, "warmup_steps": 2, "device": "cpu", "patience": 10,
       "lr": 1e-2, "min_task_positives": 5}


class ConstantPriors(nn.Module):
    """Logits = logit(base rate) per task whatever the input: the collapse seen on a
    synthetic market (per-task std ~0.001, pooled std 0.23)."""

    def __init__(self, rates: torch.Tensor) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.logit(rates))
        self.unused = nn.Linear(1, 1)  # a weight, so the optimiser has a decay group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1) + 0.0 * x[:, -1, :1]  # (B, n_tasks)


def _val_metrics(model: nn.Module, tmp: Path, *, train: bool) -> tuple[Trainer, dict]:
    trainer = Trainer(model, synthetic(256, 1), synthetic(128, 2), TrainingConfig(**CFG),
                      checkpoint_dir=tmp / "ckpt")
    if train:
        return trainer, trainer.fit().final_metrics
    return trainer, trainer.evaluate(trainer.val_source, "val_")


def test_constant_base_rate_model_is_collapsed_though_pooled_std_is_large(tmp_path) -> None:
    labels = synthetic(256, 1).tensors[1]
    rates = labels.mean(0)  # ~0.5 and ~0.2: very different base rates
    trainer, metrics = _val_metrics(ConstantPriors(rates), tmp_path, train=False)
    assert metrics["val_pred_std"] > 0.1  # the pooled judgement would call this healthy
    config = AppConfig(training=TrainingConfig(**CFG))
    tags = collapse_tags(config, metrics, trainer.included_tasks)
    assert tags["collapsed"] == "true"
    assert tags["collapsed_tasks"] == ",".join(trainer.included_tasks)


def test_a_trained_model_is_not_collapsed(tmp_path) -> None:
    torch.manual_seed(0)
    trainer, metrics = _val_metrics(TinyNet(), tmp_path, train=True)
    assert metrics["val_auc"] > 0.7  # it learned a ranking
    config = AppConfig(training=TrainingConfig(**CFG))
    assert collapse_tags(config, metrics, trainer.included_tasks) == {
        "collapsed": "false", "collapsed_tasks": "none"}


def test_one_collapsed_task_is_named_and_flags_the_run() -> None:
    rng = np.random.default_rng(0)
    labels = np.stack([rng.random(500) < 0.5, rng.random(500) < 0.05], axis=1).astype(float)
    probs = np.stack([rng.random(500), np.full(500, 0.05)], axis=1)  # task b: its prior only
    metrics = {f"val_{k}": v for k, v in task_spread(probs, labels, ("a", "b")).items()}
    assert collapsed_tasks(metrics, "val_", ("a", "b"), 0.02, 5) == ("b",)
    assert collapsed_tasks(metrics, "val_", ("a",), 0.02, 5) == ()  # only included tasks count


def test_few_distinct_values_carry_no_ranking() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random((400, 1)) < 0.3).astype(float)
    two_values = np.where(rng.random((400, 1)) < 0.5, 0.1, 0.6)  # wide spread, 2 values
    metrics = {f"val_{k}": v for k, v in task_spread(two_values, labels, ("a",)).items()}
    assert metrics["val_pred_rel_std_a"] > 0.2
    assert collapsed_tasks(metrics, "val_", ("a",), 0.02, 5) == ("a",)
    assert collapsed_tasks(metrics, "val_", ("a",), 0.02, 2) == ()
