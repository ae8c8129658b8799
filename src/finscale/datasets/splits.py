"""Chronological splits where every sample's whole span lies inside one range.

A sample ending at row p spans from its context start (row p - context + 1) to its label
end (the date of bar p + H). It belongs to a split only if that whole span lies inside the
split's date range, so no input row or label bar ever straddles a boundary. A split with
fewer than ``min_samples`` samples refuses to build (an earlier study trained against a
19-sample validation set and read noise as "inverse scaling").
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from finscale.datasets.config import DateRange, SplitsConfig

SPLIT_NAMES = ("train", "val", "test")


class SplitTooSmallError(ValueError):
    """A split has fewer samples than ``splits.min_samples``."""


@dataclass(frozen=True)
class SplitStats:
    """Size and class balance of one split."""

    name: str
    range_start: str
    range_end: str
    samples: int
    positives: dict[str, int]
    first_span_start: str | None
    last_label_end: str | None

    def positive_rate(self, task: str) -> float:
        return self.positives[task] / self.samples if self.samples else float("nan")


@dataclass(frozen=True)
class SplitReport:
    """Per split: samples, positives per task and date range (stored with the dataset)."""

    splits: tuple[SplitStats, ...]
    context: int
    horizon: int
    tasks: tuple[str, ...]

    def get(self, name: str) -> SplitStats:
        for stats in self.splits:
            if stats.name == name:
                return stats
        raise KeyError(f"split report has no split '{name}'")

    def to_dict(self) -> dict[str, Any]:
        return {"context": self.context, "horizon": self.horizon, "tasks": list(self.tasks),
                "splits": [asdict(s) for s in self.splits]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitReport:
        return cls(
            splits=tuple(SplitStats(**s) for s in data["splits"]),
            context=int(data["context"]), horizon=int(data["horizon"]),
            tasks=tuple(data["tasks"]),
        )


def window_ok(context: int, sessions: np.ndarray, ticker_ids: np.ndarray) -> np.ndarray:
    """Rows p whose context p-context+1..p is inside the table, one ticker, no missing rows."""
    rows = sessions.shape[0]
    ok = np.zeros(rows, dtype=bool)
    if rows < context:
        return ok
    start = np.arange(context - 1, rows) - (context - 1)
    end = np.arange(context - 1, rows)
    ok[context - 1 :] = (ticker_ids[start] == ticker_ids[end]) & (
        sessions[end] - sessions[start] == context - 1
    )
    return ok


def split_positions(
    rng: DateRange,
    *,
    dates: np.ndarray,
    label_end: np.ndarray,
    labelled: np.ndarray,
    window_valid: np.ndarray,
    context: int,
) -> np.ndarray:
    """End positions of the samples whose span (context start .. label end) fits ``rng``."""
    start = np.datetime64(rng.start, "D")
    end = np.datetime64(rng.end, "D")
    rows = dates.shape[0]
    span_start = np.full(rows, np.datetime64("NaT"), dtype="datetime64[D]")
    span_start[context - 1 :] = dates[: rows - context + 1].astype("datetime64[D]")
    lab_end = label_end.astype("datetime64[D]")
    with np.errstate(invalid="ignore"):
        inside = (span_start >= start) & (lab_end <= end)
    keep = window_valid & labelled & inside & ~np.isnat(lab_end) & ~np.isnat(span_start)
    return np.flatnonzero(keep).astype(np.int64)


def split_stats(
    name: str, rng: DateRange, positions: np.ndarray, *, dates: np.ndarray,
    label_end: np.ndarray, labels: np.ndarray, tasks: Sequence[str], context: int,
) -> SplitStats:
    """Counts and date range of one split's samples, computed from the labels themselves."""
    positives = {t: int(np.nansum(labels[positions, i])) for i, t in enumerate(tasks)}
    first = last = None
    if positions.size:
        first = str(np.datetime64(dates[positions[0] - context + 1], "D"))
        last = str(np.datetime64(label_end[positions[-1]], "D"))
    return SplitStats(name=name, range_start=str(rng.start), range_end=str(rng.end),
                      samples=int(positions.size), positives=positives,
                      first_span_start=first, last_label_end=last)


def split_ranges(splits: SplitsConfig) -> dict[str, DateRange]:
    """The configured train/val/test ranges, checked to be ordered and non-overlapping."""
    ranges = {"train": splits.train, "val": splits.val, "test": splits.test}
    ordered = list(ranges.items())
    for (a_name, a), (b_name, b) in itertools.pairwise(ordered):
        if b.start <= a.end:
            raise ValueError(f"splits: '{b_name}' starts {b.start}, not after '{a_name}' "
                             f"ends {a.end}")
    return ranges


def walk_forward_folds(splits: SplitsConfig) -> list[SplitsConfig]:
    """Expanding-window folds: fold k trains to train.end + k*val_days, validates next val_days.

    The test range stays fixed (``SplitsConfig`` refuses folds that would reach it).
    Each returned fold holds plain ranges (``walk_forward`` None).
    """
    wf = splits.walk_forward
    if wf is None:
        return [splits]
    folds = []
    for k in range(wf.folds):
        val = wf.val_range(splits.train.end, k)
        folds.append(splits.model_copy(update={
            "train": DateRange(start=splits.train.start, end=wf.train_end(splits.train.end, k)),
            "val": val, "walk_forward": None,
        }))
    return folds


def fold_splits(splits: SplitsConfig) -> SplitsConfig:
    """The ranges a build uses: fold k's when ``walk_forward.fold`` is k, else the fixed ones
    (``WalkForwardConfig`` keeps k within its folds)."""
    wf = splits.walk_forward
    if wf is None or wf.fold is None:
        return splits
    return walk_forward_folds(splits)[wf.fold]


def fold_label(splits: SplitsConfig) -> str:
    """``walk-forward fold 1 of 3`` when a fold is selected, else empty."""
    wf = splits.walk_forward
    if wf is None or wf.fold is None:
        return ""
    return f"walk-forward fold {wf.fold} of {wf.folds}"


def check_min_samples(report: SplitReport, min_samples: int, what: str) -> None:
    """Refuse a dataset whose split is smaller than the floor, naming split and sizes."""
    small = [s for s in report.splits if s.samples < min_samples]
    if small:
        detail = ", ".join(f"{s.name}={s.samples} ({s.range_start}..{s.range_end})"
                           for s in small)
        raise SplitTooSmallError(
            f"{what}: split(s) below splits.min_samples={min_samples}: {detail}; "
            "widen the ranges, shorten the context or lower the floor"
        )
