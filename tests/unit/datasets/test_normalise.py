"""Normalisation statistics come from train rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from finscale.datasets.assemble import PreparedTable
from finscale.datasets.table import assign_splits, normalised_frame
from tests.support.datasets import random_walk_bars

from .test_splits import CONTEXT, _config, _prepared


def _with_features(prepared: PreparedTable, values: np.ndarray) -> PreparedTable:
    table = prepared.table.copy()
    table["f"] = values
    return PreparedTable(table=table, features=prepared.features, tasks=prepared.tasks,
                         tickers=prepared.tickers, drops=prepared.drops, parents=())


def test_stats_ignore_val_and_test_rows_and_clip() -> None:
    prepared = _prepared(random_walk_bars(400, seed=0))
    config = _config()
    positions, _ = assign_splits(prepared, config)
    _, stats = normalised_frame(prepared, positions, config)
    train_end = int(positions["train"].max())
    values = prepared.table["f"].to_numpy().copy()
    values[train_end + 1 :] = values[train_end + 1 :] * 1000 + 5
    changed = _with_features(prepared, values)
    frame, stats_after = normalised_frame(changed, positions, config)
    np.testing.assert_array_equal(stats.median, stats_after.median)
    np.testing.assert_array_equal(stats.scale, stats_after.scale)
    # val/test values now far outside the train range: clipped, not rescaled
    assert frame["f"].iloc[positions["test"]].max() == config.clip
    # a change to a train row does move the statistics
    values_train = prepared.table["f"].to_numpy().copy()
    values_train[positions["train"][:50]] += 500.0
    _, stats_train = normalised_frame(_with_features(prepared, values_train), positions, config)
    assert not np.array_equal(stats.median, stats_train.median)


def test_stats_equal_direct_median_iqr_of_train_context_rows() -> None:
    prepared = _prepared(random_walk_bars(400, seed=0))
    config = _config()
    positions, _ = assign_splits(prepared, config)
    _, stats = normalised_frame(prepared, positions, config)
    first = positions["train"][0] - CONTEXT + 1
    rows = prepared.table["f"].to_numpy()[first : positions["train"][-1] + 1]
    q25, q50, q75 = np.percentile(rows, [25, 50, 75])
    assert stats.median[0] == q50
    assert stats.scale[0] == q75 - q25


def test_labels_are_stored_unnormalised() -> None:
    prepared = _prepared(random_walk_bars(400, seed=0))
    config = _config()
    positions, _ = assign_splits(prepared, config)
    frame, _ = normalised_frame(prepared, positions, config)
    pd.testing.assert_frame_equal(frame[list(prepared.tasks)], prepared.table[list(prepared.tasks)])
