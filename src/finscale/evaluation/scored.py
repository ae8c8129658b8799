"""One score vector on one task of one split, tied to the exact samples it scored.

Every comparison (a model against a baseline, two budgets) goes through
``require_same_samples``: two results with different sample hashes scored different
samples or different targets, and comparing them would be a silent error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASELINE_PREFIX = "baseline-"  # a baseline's predictor / MLflow ``model`` name starts so


class SampleMismatchError(ValueError):
    """Two results did not score the identical samples and labels."""


@dataclass(frozen=True)
class ScoredTask:
    """Scores of one predictor on one task of one split.

    Attributes:
        predictor: ``model`` name or ``baseline-<name>``.
        task: the task (label column) scored.
        split: ``val`` or ``test``.
        sample_hash: the split's ``WindowedDataset.sample_hash`` (end dates, tickers, labels).
        end_dates: (N,) datetime64 end date of each sample (the bootstrap resamples days).
        labels: (N,) 0/1.
        scores: (N,) probabilities, or raw scores when ``probabilistic`` is False.
        probabilistic: whether loss metrics are defined for these scores.
    """

    predictor: str
    task: str
    split: str
    sample_hash: str
    end_dates: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    probabilistic: bool

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.scores) != n or len(self.end_dates) != n:
            raise ValueError(f"{self.predictor} {self.task} {self.split}: {len(self.scores)} "
                             f"scores, {n} labels and {len(self.end_dates)} dates differ")


def require_same_samples(a: ScoredTask, b: ScoredTask) -> None:
    """Raise ``SampleMismatchError`` unless ``a`` and ``b`` scored the same samples and task."""
    if a.sample_hash != b.sample_hash or a.task != b.task or a.split != b.split:
        raise SampleMismatchError(
            f"{a.predictor} scored {a.split}/{a.task} samples {a.sample_hash}, {b.predictor} "
            f"scored {b.split}/{b.task} samples {b.sample_hash}: not the same samples and "
            "labels, so they cannot be compared"
        )
    if not np.array_equal(a.labels, b.labels):
        raise SampleMismatchError(f"{a.predictor} and {b.predictor} share sample hash "
                                  f"{a.sample_hash} but not their labels")
