"""Validation metrics. The ONE place logits become probabilities (``probabilities``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Logits -> probabilities. Nothing else in finscale applies a sigmoid."""
    return torch.sigmoid(logits.float())


def mean_auc(probs: np.ndarray, labels: np.ndarray, task_names: Sequence[str]) -> dict[str, float]:
    """ROC AUC per task (NaN where a task has one class only) and their mean as ``val_auc``."""
    out: dict[str, float] = {}
    values: list[float] = []
    for j, name in enumerate(task_names):
        column = labels[:, j]
        if column.min() == column.max():
            out[f"auc_{name}"] = math.nan
            continue
        auc = float(roc_auc_score(column, probs[:, j]))
        out[f"auc_{name}"] = auc
        values.append(auc)
    out["auc"] = float(np.mean(values)) if values else math.nan
    return out


def prediction_spread(probs: np.ndarray) -> dict[str, float]:
    """std/min/max of all predicted probabilities: a collapsed model has std near 0."""
    return {
        "pred_std": float(probs.std()),
        "pred_min": float(probs.min()),
        "pred_max": float(probs.max()),
    }


def evaluation_metrics(
    logits: torch.Tensor, labels: torch.Tensor, loss: float, task_names: Sequence[str], prefix: str
) -> dict[str, float]:
    """Loss, AUC (mean and per task) and prediction spread, keys prefixed (``val_``, ``test_``)."""
    probs = probabilities(logits).cpu().numpy()
    label_array = labels.cpu().numpy()
    metrics = {"loss": loss, **mean_auc(probs, label_array, task_names), **prediction_spread(probs)}
    return {f"{prefix}{key}": value for key, value in metrics.items()}
