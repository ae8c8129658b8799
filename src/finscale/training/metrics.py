"""Validation metrics. The ONE place logits become probabilities (``probabilities``).

Every AUC comes with the class counts it was computed from, and a task whose split has
fewer than ``min_task_positives`` positives (or negatives) is left out of the mean AUC:
an AUC over 3 positives is noise, and a noisy task must not pick the best checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

NO_TASKS = "none"


class NoUsableTaskError(ValueError):
    """Every task of a split has fewer positives or negatives than the configured floor."""


@dataclass(frozen=True)
class TaskCounts:
    """Positives and negatives of one task in one split (the weight behind its AUC)."""

    positives: int
    negatives: int

    @property
    def samples(self) -> int:
        return self.positives + self.negatives

    @property
    def positive_rate(self) -> float:
        return self.positives / self.samples if self.samples else math.nan

    def usable(self, min_task_positives: int) -> bool:
        """Both classes reach the floor, so the task's AUC is not noise."""
        return min(self.positives, self.negatives) >= min_task_positives


def task_counts(
    labels: np.ndarray | torch.Tensor, task_names: Sequence[str]
) -> dict[str, TaskCounts]:
    """Positives/negatives per task of a (N, n_tasks) 0/1 label array."""
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels
    if array.ndim != 2 or array.shape[1] != len(task_names):
        raise ValueError(f"labels of shape {array.shape} do not match tasks {list(task_names)}")
    positives = (array > 0.5).sum(axis=0)
    return {name: TaskCounts(int(positives[j]), int(array.shape[0] - positives[j]))
            for j, name in enumerate(task_names)}


def usable_tasks(counts: Mapping[str, TaskCounts], min_task_positives: int) -> tuple[str, ...]:
    """Tasks whose AUC enters the mean (both classes >= ``min_task_positives``), in order."""
    return tuple(name for name, c in counts.items() if c.usable(min_task_positives))


def excluded_tasks(counts: Mapping[str, TaskCounts], min_task_positives: int) -> tuple[str, ...]:
    """Tasks left out of the mean AUC because a class is below the floor, in order."""
    return tuple(name for name, c in counts.items() if not c.usable(min_task_positives))


def describe_counts(counts: Mapping[str, TaskCounts]) -> str:
    """``task: pos/neg`` for each task, for log lines and error messages."""
    return ", ".join(f"{name}: {c.positives} pos / {c.negatives} neg" for name, c in counts.items())


def require_usable_tasks(
    counts: Mapping[str, TaskCounts], min_task_positives: int, split: str
) -> tuple[str, ...]:
    """The usable tasks; raises ``NoUsableTaskError`` naming every count when there is none."""
    usable = usable_tasks(counts, min_task_positives)
    if not usable:
        raise NoUsableTaskError(
            f"{split} split: no task has >= {min_task_positives} positives and negatives "
            f"(training.min_task_positives); counts {describe_counts(counts)}. A mean AUC "
            "over these would be noise, so the run refuses to train"
        )
    return usable


def count_params(counts: Mapping[str, TaskCounts], split: str) -> dict[str, float | int]:
    """Flat params ``split.<name>.{positives,negatives,positive_rate}.<task>`` for MLflow."""
    out: dict[str, float | int] = {}
    for task, c in counts.items():
        out[f"split.{split}.positives.{task}"] = c.positives
        out[f"split.{split}.negatives.{task}"] = c.negatives
        out[f"split.{split}.positive_rate.{task}"] = round(c.positive_rate, 6)
    return out


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Logits -> probabilities. Nothing else in finscale applies a sigmoid."""
    return torch.sigmoid(logits.float())


def mean_auc(
    probs: np.ndarray,
    labels: np.ndarray,
    task_names: Sequence[str],
    included: Collection[str] | None = None,
) -> dict[str, float]:
    """ROC AUC per task (NaN with one class), ``auc`` = mean over ``included`` (None: all).

    ``auc_all_tasks`` is the mean over every task with a defined AUC (for reference only)
    and ``auc_n_tasks`` how many tasks the selection mean ``auc`` averages.
    """
    out: dict[str, float] = {}
    selected: list[float] = []
    every: list[float] = []
    for j, name in enumerate(task_names):
        column = labels[:, j]
        if column.min() == column.max():
            out[f"auc_{name}"] = math.nan
            continue
        auc = float(roc_auc_score(column, probs[:, j]))
        out[f"auc_{name}"] = auc
        every.append(auc)
        if included is None or name in included:
            selected.append(auc)
    out["auc"] = float(np.mean(selected)) if selected else math.nan
    out["auc_all_tasks"] = float(np.mean(every)) if every else math.nan
    out["auc_n_tasks"] = float(len(selected))
    return out


def prediction_spread(probs: np.ndarray) -> dict[str, float]:
    """std/min/max of all predicted probabilities pooled over tasks (for reference only:
    tasks have different base rates, so a model that outputs each task's prior has a large
    pooled std; collapse is judged per task, see ``task_spread``)."""
    return {
        "pred_std": float(probs.std()),
        "pred_min": float(probs.min()),
        "pred_max": float(probs.max()),
    }


def task_spread(
    probs: np.ndarray, labels: np.ndarray, task_names: Sequence[str]
) -> dict[str, float]:
    """Per task: std of its probabilities, that std relative to its label std sqrt(p(1-p)),
    and how many distinct values its predictions take (a ranking needs more than a few)."""
    out: dict[str, float] = {}
    for j, name in enumerate(task_names):
        column = probs[:, j]
        rate = float(labels[:, j].mean())
        label_std = math.sqrt(rate * (1.0 - rate))
        std = float(column.std())
        out[f"pred_std_{name}"] = std
        out[f"pred_rel_std_{name}"] = std / label_std if label_std > 0 else math.nan
        out[f"pred_distinct_{name}"] = float(np.unique(column).size)
    return out


def collapsed_tasks(
    metrics: Mapping[str, float],
    prefix: str,
    tasks: Sequence[str],
    std_floor: float,
    min_distinct: int,
) -> tuple[str, ...]:
    """The tasks among ``tasks`` whose predictions collapsed (``task_spread`` metrics under
    ``prefix``): relative spread below ``std_floor`` (or undefined), or fewer than
    ``min_distinct`` distinct values. Such a task predicts its prior and ranks nothing."""
    out = []
    for name in tasks:
        relative = metrics[f"{prefix}pred_rel_std_{name}"]
        distinct = metrics[f"{prefix}pred_distinct_{name}"]
        if math.isnan(relative) or relative < std_floor or distinct < min_distinct:
            out.append(name)
    return tuple(out)


def evaluation_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    loss: float,
    task_names: Sequence[str],
    prefix: str,
    included: Collection[str] | None = None,
) -> dict[str, float]:
    """Loss, AUC (per task, and the mean over ``included`` tasks), pooled and per-task
    prediction spread, keys prefixed (``val_``, ``test_``).

    ``included`` comes from the VALIDATION counts for every split, so the test mean averages
    the same tasks as the validation mean (None: every task)."""
    probs = probabilities(logits).cpu().numpy()
    label_array = labels.cpu().numpy()
    metrics = {
        "loss": loss,
        **mean_auc(probs, label_array, task_names, included),
        **prediction_spread(probs),
        **task_spread(probs, label_array, task_names),
    }
    return {f"{prefix}{key}": value for key, value in metrics.items()}
