"""Open a stored dataset artifact as zero-copy windowed train/val/test splits.

Kept apart from the builder so a trainer can open datasets without the feature engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from finscale.datasets.assemble import TICKER_ID
from finscale.datasets.normalise import RobustStats
from finscale.datasets.splits import SPLIT_NAMES, SplitReport
from finscale.datasets.table import SPLIT_COLUMN
from finscale.datasets.windows import WindowedDataset
from finscale.manifest.artifacts import load_frame
from finscale.manifest.store import ArtifactRecord, Manifest


@dataclass(frozen=True)
class DatasetSplits:
    """Windowed train/val/test over one shared tensor, with the report and the stats."""

    train: WindowedDataset
    val: WindowedDataset
    test: WindowedDataset
    report: SplitReport
    stats: RobustStats
    record: ArtifactRecord


def open_splits(manifest: Manifest, record: ArtifactRecord) -> DatasetSplits:
    """Load a dataset artifact (MD5-verified) as windowed train/val/test over one tensor."""
    frame = load_frame(manifest, record)
    meta = record.meta
    features = torch.from_numpy(np.ascontiguousarray(frame[meta["features"]].to_numpy(np.float32)))
    labels = torch.from_numpy(np.ascontiguousarray(frame[meta["tasks"]].to_numpy(np.float32)))
    ticker_ids = torch.from_numpy(np.array(frame[TICKER_ID].to_numpy(np.int64)))
    dates = frame.index.to_numpy(dtype="datetime64[ns]")
    split = frame[SPLIT_COLUMN].to_numpy()
    datasets = {
        name: WindowedDataset(
            features, labels, torch.from_numpy(np.flatnonzero(split == code).astype(np.int64)),
            int(meta["context"]), dates=dates, task_names=meta["tasks"],
            feature_names=meta["features"], ticker_ids=ticker_ids, tickers=meta["tickers"],
            pooled=bool(meta["pooled"]),
        )
        for code, name in enumerate(SPLIT_NAMES)
    }
    return DatasetSplits(
        train=datasets["train"], val=datasets["val"], test=datasets["test"],
        report=SplitReport.from_dict(meta["split_report"]),
        stats=RobustStats.from_dict(meta["normalisation"]), record=record,
    )
