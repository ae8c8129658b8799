"""Assemble a dataset table: input blocks aligned on the target's bars, warm-up dropped.

The table holds, per kept row: the input features (raw, not yet normalised), the labels,
``label_end`` (date of bar t+H), ``session`` (bar number in the target's own series, so
gaps left by dropped rows are visible) and ``ticker_id``. Every dropped row is counted
under the first input block that lacked a value there, so the report says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from finscale.datasets.targets import label_end_dates, threshold_labels

LABEL_END = "label_end"
SESSION = "session"
TICKER_ID = "ticker_id"
META_COLUMNS = (LABEL_END, SESSION, TICKER_ID)


@dataclass(frozen=True)
class DropReport:
    """Rows of the target's bars, rows kept, and rows dropped per reason."""

    ticker: str
    rows_in: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"ticker": self.ticker, "rows_in": self.rows_in, "rows_kept": self.rows_kept,
                "dropped": dict(self.dropped)}


def align_blocks(
    index: pd.DatetimeIndex, blocks: Mapping[str, pd.DataFrame]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Reindex every block onto ``index`` (exact dates, no fill) and concatenate.

    Returns the joined inputs and, per block, a (rows, columns) mask of its NaNs.
    Columns of different blocks must not collide.
    """
    aligned = []
    missing: dict[str, pd.DataFrame] = {}
    seen: dict[str, str] = {}
    for block_name, block in blocks.items():
        for column in block.columns:
            if column in seen:
                raise ValueError(f"column '{column}' appears in blocks '{seen[column]}' "
                                 f"and '{block_name}'")
            seen[column] = block_name
        frame = block.reindex(index)
        missing[block_name] = frame.isna()
        aligned.append(frame)
    joined = pd.concat(aligned, axis=1) if aligned else pd.DataFrame(index=index)
    return joined.astype(np.float64), missing


def _culprit(nan_mask: pd.DataFrame, blamed: np.ndarray) -> str:
    """The column missing on most blamed rows, with its last missing date, e.g.
    ``BAMLH0A0HYM2_z252 until 2001-02-05``; ``+N more`` when other columns also lack values."""
    per_column = nan_mask.to_numpy()[blamed].sum(axis=0)
    top = int(per_column.argmax())
    last = nan_mask.index[np.flatnonzero(blamed & nan_mask.iloc[:, top].to_numpy())[-1]]
    others = int((per_column > 0).sum()) - 1
    more = f", +{others} more columns" if others else ""
    return f"{nan_mask.columns[top]} until {last:%Y-%m-%d}{more}"


def drop_reasons(
    missing: Mapping[str, pd.DataFrame], rows: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Keep-mask and per-block counts: each dropped row is blamed on its first missing
    block, and the reason names the column that lacked a value on most of them."""
    keep = np.ones(rows, dtype=bool)
    counts: dict[str, int] = {}
    for block_name, nan_mask in missing.items():
        mask = nan_mask.to_numpy().any(axis=1)
        blamed = keep & mask
        if blamed.any():
            counts[f"missing {block_name} ({_culprit(nan_mask, blamed)})"] = int(blamed.sum())
        keep &= ~mask
    return keep, counts


def assemble_table(
    bars: pd.DataFrame,
    blocks: Mapping[str, pd.DataFrame],
    *,
    ticker: str,
    ticker_id: int,
    horizon: int,
    thresholds: Sequence[float],
    timescale: str,
) -> tuple[pd.DataFrame, list[str], list[str], DropReport]:
    """One ticker's table: (frame, feature columns, task columns, drop report).

    Labels come from ``bars`` (raw prices at the dataset's timescale); rows whose future
    window is incomplete keep NaN labels here and are excluded from every split later.
    """
    index = pd.DatetimeIndex(bars.index)
    inputs, missing = align_blocks(index, blocks)
    keep, counts = drop_reasons(missing, len(index))
    labels = threshold_labels(bars, horizon, thresholds, timescale)
    table = pd.concat([inputs, labels], axis=1)
    table[LABEL_END] = label_end_dates(index, horizon).to_numpy()
    table[SESSION] = np.arange(len(index), dtype=np.int64)
    table[TICKER_ID] = np.int64(ticker_id)
    unlabeled = keep & labels.isna().to_numpy().any(axis=1)
    if unlabeled.any():
        counts["no full label window (kept, never a sample end)"] = int(unlabeled.sum())
    table = table.loc[keep]
    table.index.name = "Date"
    report = DropReport(ticker=ticker, rows_in=len(index), rows_kept=int(keep.sum()),
                        dropped=counts)
    return table, list(inputs.columns), list(labels.columns), report


@dataclass(frozen=True)
class PreparedTable:
    """An assembled table before splits and normalisation, with its lineage."""

    table: pd.DataFrame
    features: tuple[str, ...]
    tasks: tuple[str, ...]
    tickers: tuple[str, ...]
    drops: tuple[DropReport, ...]
    parents: tuple[int, ...]
