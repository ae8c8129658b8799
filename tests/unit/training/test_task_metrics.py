"""Counts behind every AUC, and the floor that keeps noise tasks out of the selection mean."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from finscale.training.metrics import (
    NoUsableTaskError,
    TaskCounts,
    count_params,
    evaluation_metrics,
    excluded_tasks,
    mean_auc,
    require_usable_tasks,
    task_counts,
    usable_tasks,
)
from finscale.training.trainer import Trainer
from tests.unit.training.conftest import synthetic

TASKS = ("t1", "t3")


def _labels_and_scores() -> tuple[np.ndarray, np.ndarray]:
    """t1: 30 pos / 30 neg with a weak score; t3: 3 pos / 57 neg, perfectly ranked."""
    rng = np.random.default_rng(0)
    y1 = np.array([1] * 30 + [0] * 30, dtype=np.float32)
    s1 = 0.5 + 0.1 * (y1 - 0.5) + rng.normal(0, 0.2, 60)
    y3 = np.array([1] * 3 + [0] * 57, dtype=np.float32)
    s3 = np.where(y3 == 1, 0.9, 0.1) + rng.normal(0, 0.01, 60)
    return np.stack([y1, y3], axis=1), np.stack([s1, s3], axis=1)


def test_counts_are_taken_from_the_labels() -> None:
    labels, _ = _labels_and_scores()
    counts = task_counts(labels, TASKS)
    assert counts == {"t1": TaskCounts(30, 30), "t3": TaskCounts(3, 57)}
    assert counts["t3"].samples == 60 and counts["t3"].positive_rate == pytest.approx(0.05)
    assert count_params(counts, "val") == {
        "split.val.positives.t1": 30, "split.val.negatives.t1": 30,
        "split.val.positive_rate.t1": 0.5, "split.val.positives.t3": 3,
        "split.val.negatives.t3": 57, "split.val.positive_rate.t3": 0.05,
    }
    with pytest.raises(ValueError, match="do not match tasks"):
        task_counts(labels, ("only_one",))


def test_floor_applies_to_positives_and_negatives() -> None:
    counts = {"few_pos": TaskCounts(3, 500), "few_neg": TaskCounts(500, 19),
              "ok": TaskCounts(20, 20)}
    assert usable_tasks(counts, 20) == ("ok",)
    assert excluded_tasks(counts, 20) == ("few_pos", "few_neg")
    assert usable_tasks(counts, 3) == ("few_pos", "few_neg", "ok")


def test_noise_task_is_left_out_of_the_mean_but_still_reported() -> None:
    labels, scores = _labels_and_scores()
    auc1 = roc_auc_score(labels[:, 0], scores[:, 0])
    out = mean_auc(scores, labels, TASKS, included=("t1",))
    assert out["auc_t3"] == pytest.approx(1.0)  # the 3-positive task looks perfect...
    assert out["auc"] == pytest.approx(auc1) and auc1 < 0.9  # ...and does not lift the mean
    assert out["auc_all_tasks"] == pytest.approx((auc1 + 1.0) / 2)
    assert out["auc_n_tasks"] == 1.0
    logits = torch.logit(torch.from_numpy(scores).clamp(1e-4, 1 - 1e-4))
    metrics = evaluation_metrics(logits, torch.from_numpy(labels), 0.5, TASKS, "val_", ("t1",))
    assert metrics["val_auc"] == pytest.approx(auc1)
    everything = evaluation_metrics(logits, torch.from_numpy(labels), 0.5, TASKS, "val_")
    assert everything["val_auc"] == pytest.approx((auc1 + 1.0) / 2)


def test_no_usable_task_is_an_error_naming_the_counts() -> None:
    counts = {"t1": TaskCounts(12, 300), "t3": TaskCounts(3, 309)}
    with pytest.raises(NoUsableTaskError, match=r"t1: 12 pos / 300 neg, t3: 3 pos / 309 neg"):
        require_usable_tasks(counts, 20, "val")
    assert require_usable_tasks(counts, 12, "val") == ("t1",)
    assert math.isnan(mean_auc(np.zeros((2, 1)), np.ones((2, 1)), ("x",))["auc"])


def test_trainer_refuses_before_training_when_every_task_is_noise(make_cfg, tiny_net, tmp_path):
    # synthetic val: task0 25 pos / 23 neg, task1 14 pos / 34 neg
    with pytest.raises(NoUsableTaskError, match="task0: 25 pos / 23 neg, task1: 14 pos / 34 neg"):
        Trainer(tiny_net(), synthetic(96, 1), synthetic(48, 2),
                make_cfg(min_task_positives=24), checkpoint_dir=tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()  # nothing trained, nothing written


def test_early_stopping_mean_uses_only_tasks_above_the_floor(make_cfg, tiny_net, tmp_path):
    seen: list[dict[str, float]] = []
    trainer = Trainer(tiny_net(), synthetic(96, 1), synthetic(48, 2),
                      make_cfg(epochs=2, min_task_positives=20),
                      checkpoint_dir=tmp_path / "ckpt", epoch_hooks=[seen.append])
    assert trainer.included_tasks == ("task0",) and trainer.excluded_tasks == ("task1",)
    assert trainer.val_counts["task1"] == TaskCounts(14, 34)
    result = trainer.fit()
    for metrics in seen:
        assert metrics["val_auc"] == metrics["val_auc_task0"]  # task1 never selects
        assert not math.isnan(metrics["val_auc_task1"])  # but it is still logged
        assert metrics["val_auc_n_tasks"] == 1.0
    assert trainer.progress.best_metric == max(m["val_auc_task0"] for m in seen)
    assert result.final_metrics["val_auc"] == result.final_metrics["val_auc_task0"]
