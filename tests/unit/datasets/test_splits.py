"""Splits: no sample span crosses a boundary; reported counts match a direct computation."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from finscale.datasets.assemble import PreparedTable, assemble_table
from finscale.datasets.config import DatasetConfig, DateRange, SplitsConfig, WalkForwardConfig
from finscale.datasets.splits import SplitTooSmallError, check_min_samples, walk_forward_folds
from finscale.datasets.table import assign_splits
from tests.support.datasets import random_walk_bars

CONTEXT = 10
HORIZON = 3
THRESHOLDS = (0.005, 0.01)


def _config(min_samples: int = 10, walk_forward: WalkForwardConfig | None = None) -> DatasetConfig:
    """Synthetic 2001-2002 ranges (train to Aug 2001, val to Jan 2002, test 2002)."""
    splits = SplitsConfig(
        train=DateRange(start=date(2001, 1, 1), end=date(2001, 8, 31)),
        val=DateRange(start=date(2001, 9, 1), end=date(2002, 1, 31)),
        test=DateRange(start=date(2002, 2, 1), end=date(2002, 12, 31)),
        min_samples=min_samples,
        **({"walk_forward": walk_forward} if walk_forward is not None else {}),
    )
    return DatasetConfig(horizon=HORIZON, thresholds=THRESHOLDS, context=CONTEXT, splits=splits)


def _prepared(bars: pd.DataFrame, warmup: int = 7) -> PreparedTable:
    feature = pd.DataFrame({"f": np.arange(len(bars), dtype=float)}, index=bars.index)
    feature.iloc[:warmup] = np.nan
    table, feats, tasks, report = assemble_table(
        bars, {"features": feature}, ticker="T", ticker_id=0, horizon=HORIZON,
        thresholds=THRESHOLDS, timescale="daily")
    return PreparedTable(table=table, features=tuple(feats), tasks=tuple(tasks), tickers=("T",),
                         drops=(report,), parents=())


def _direct(bars: pd.DataFrame, rng: DateRange, warmup: int) -> tuple[list[int], list[int]]:
    """Brute force over raw bar numbers: sample ends and positives per task."""
    dates = [d.date() for d in bars.index]
    ends, positives = [], [0] * len(THRESHOLDS)
    for t in range(len(bars)):
        first, last = t - CONTEXT + 1, t + HORIZON
        if first < warmup or last >= len(bars):
            continue
        if not (rng.start <= dates[first] and dates[last] <= rng.end):
            continue
        ends.append(t)
        upside = bars["High"].iloc[t + 1 : t + HORIZON + 1].max() / bars["Close"].iloc[t] - 1
        for i, theta in enumerate(THRESHOLDS):
            positives[i] += int(upside >= theta)
    return ends, positives


def test_no_sample_span_crosses_a_boundary_and_counts_match() -> None:
    bars, warmup = random_walk_bars(400, seed=0), 7
    prepared = _prepared(bars, warmup)
    config = _config()
    positions, report = assign_splits(prepared, config)
    table = prepared.table
    for name, rng in {"train": config.splits.train, "val": config.splits.val,
                      "test": config.splits.test}.items():
        pos = positions[name]
        span_start = table.index[pos - CONTEXT + 1].date
        span_end = pd.DatetimeIndex(table["label_end"].iloc[pos]).date
        assert all(rng.start <= s for s in span_start)
        assert all(e <= rng.end for e in span_end)
        ends, positives = _direct(bars, rng, warmup)
        assert list(table["session"].iloc[pos]) == ends
        stats = report.get(name)
        assert stats.samples == len(ends)
        assert [stats.positives[t] for t in prepared.tasks] == positives
    # splits are disjoint
    all_pos = np.concatenate(list(positions.values()))
    assert len(all_pos) == len(set(all_pos.tolist()))


def test_windows_never_bridge_dropped_rows() -> None:
    bars = random_walk_bars(400, seed=0)
    prepared = _prepared(bars)
    table = prepared.table.drop(prepared.table.index[100])  # a hole inside train
    prepared = PreparedTable(table=table, features=prepared.features, tasks=prepared.tasks,
                             tickers=("T",), drops=prepared.drops, parents=())
    positions, _ = assign_splits(prepared, _config())
    sessions = table["session"].to_numpy()
    for p in positions["train"]:
        assert sessions[p] - sessions[p - CONTEXT + 1] == CONTEXT - 1


def test_tiny_split_refuses_with_clear_error() -> None:
    prepared = _prepared(random_walk_bars(400, seed=0))
    config = _config(min_samples=200)
    _, report = assign_splits(prepared, config)
    with pytest.raises(SplitTooSmallError, match=r"val=\d+ \(2001-09-01\.\.2002-01-31\)"):
        check_min_samples(report, config.splits.min_samples, "dataset T")


def test_overlapping_ranges_are_refused() -> None:
    config = _config().model_copy(update={"splits": SplitsConfig(
        train=DateRange(start=date(2001, 1, 1), end=date(2001, 9, 30)),
        val=DateRange(start=date(2001, 9, 1), end=date(2002, 1, 31)),
        test=DateRange(start=date(2002, 2, 1), end=date(2002, 12, 31)))})
    with pytest.raises(ValueError, match="'val' starts 2001-09-01"):
        assign_splits(_prepared(random_walk_bars(400, seed=0)), config)


def test_walk_forward_folds_expand_train_and_stop_before_test() -> None:
    splits = _config().splits.model_copy(
        update={"walk_forward": WalkForwardConfig(folds=2, val_days=60)})
    folds = walk_forward_folds(splits)
    assert [f.train.end for f in folds] == [date(2001, 8, 31), date(2001, 10, 30)]
    assert folds[1].val.start == date(2001, 10, 31)
    # fold 4 would validate 2002-04-29..2002-06-27, inside the test range: refused at build
    with pytest.raises(ValidationError, match=r"fold 4 validation .* reaches the test range"):
        SplitsConfig.model_validate({**splits.model_dump(),
                                     "walk_forward": {"folds": 5, "val_days": 60}})
