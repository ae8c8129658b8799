"""Split assignment and the stored layout of a dataset table (features, labels, split codes).

Pure functions over a ``PreparedTable``: no manifest, no feature engine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from finscale.datasets.assemble import LABEL_END, SESSION, TICKER_ID, PreparedTable
from finscale.datasets.config import DatasetConfig
from finscale.datasets.normalise import RobustStats, apply_robust, fit_robust, train_rows_for
from finscale.datasets.splits import (
    SPLIT_NAMES,
    SplitReport,
    split_positions,
    split_ranges,
    split_stats,
    window_ok,
)

SPLIT_COLUMN = "split"
NO_SPLIT = -1


def assign_splits(
    prepared: PreparedTable, config: DatasetConfig
) -> tuple[dict[str, np.ndarray], SplitReport]:
    """End positions per split and the report (no size floor applied here)."""
    table = prepared.table
    dates = table.index.to_numpy(dtype="datetime64[ns]")
    label_end = table[LABEL_END].to_numpy(dtype="datetime64[ns]")
    labels = table[list(prepared.tasks)].to_numpy(dtype=np.float64)
    labelled = ~np.isnan(labels).any(axis=1)
    valid = window_ok(config.context, table[SESSION].to_numpy(), table[TICKER_ID].to_numpy())
    positions: dict[str, np.ndarray] = {}
    stats = []
    for name, rng in split_ranges(config.splits).items():
        pos = split_positions(rng, dates=dates, label_end=label_end, labelled=labelled,
                              window_valid=valid, context=config.context)
        positions[name] = pos
        stats.append(split_stats(name, rng, pos, dates=dates, label_end=label_end,
                                 labels=labels, tasks=prepared.tasks, context=config.context))
    report = SplitReport(splits=tuple(stats), context=config.context, horizon=config.horizon,
                         tasks=tuple(prepared.tasks))
    return positions, report


def normalised_frame(
    prepared: PreparedTable, positions: dict[str, np.ndarray], config: DatasetConfig
) -> tuple[pd.DataFrame, RobustStats]:
    """The stored frame: robust-scaled float32 features (train-only stats), labels, meta."""
    table = prepared.table
    values = table[list(prepared.features)].to_numpy(dtype=np.float64)
    train_rows = train_rows_for(positions["train"], config.context)
    stats = fit_robust(values, train_rows, tuple(prepared.features), config.clip)
    out = pd.DataFrame(apply_robust(values, stats), index=table.index,
                       columns=list(prepared.features))
    for column in (*prepared.tasks, LABEL_END, SESSION, TICKER_ID):
        out[column] = table[column].to_numpy()
    split = np.full(len(table), NO_SPLIT, dtype=np.int8)
    for code, name in enumerate(SPLIT_NAMES):
        split[positions[name]] = code
    out[SPLIT_COLUMN] = split
    return out, stats
