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


class WithheldSplitError(RuntimeError):
    """The test split was asked for by code that opened the dataset without it."""


@dataclass(frozen=True)
class DatasetSplits:
    """Windowed train/val/test over one shared tensor, with the report and the stats.

    Opened with ``include_test=False`` (anything that selects: HPO trials, early stopping
    runs that do not report) the test split does not exist: ``test`` raises, and the test
    rows' features and labels in the shared tensor are NaN.
    """

    train: WindowedDataset
    val: WindowedDataset
    withheld_test: WindowedDataset | None
    report: SplitReport
    stats: RobustStats
    record: ArtifactRecord

    @property
    def has_test(self) -> bool:
        return self.withheld_test is not None

    @property
    def test(self) -> WindowedDataset:
        if self.withheld_test is None:
            raise WithheldSplitError(
                f"dataset {self.record.name} was opened without its test split "
                "(training.evaluate_test is false): nothing that selects may read it"
            )
        return self.withheld_test


def _tensor_ready(array: np.ndarray) -> np.ndarray:
    """C-contiguous and writable (pandas 3 may hand out read-only views); copies only when
    the array is neither already."""
    return np.require(array, requirements=["C", "W"])


def open_splits(
    manifest: Manifest, record: ArtifactRecord, *, include_test: bool = True
) -> DatasetSplits:
    """Load a dataset artifact (MD5-verified) as windowed train/val/test over one tensor;
    without ``include_test`` the test rows are blanked before any tensor is made."""
    frame = load_frame(manifest, record)
    meta = record.meta
    split = frame[SPLIT_COLUMN].to_numpy()
    if not include_test:
        test_rows = split == SPLIT_NAMES.index("test")
        frame.loc[test_rows, [*meta["features"], *meta["tasks"]]] = np.nan
    features = torch.from_numpy(_tensor_ready(frame[meta["features"]].to_numpy(np.float32)))
    labels = torch.from_numpy(_tensor_ready(frame[meta["tasks"]].to_numpy(np.float32)))
    ticker_ids = torch.from_numpy(np.array(frame[TICKER_ID].to_numpy(np.int64)))
    dates = frame.index.to_numpy(dtype="datetime64[ns]")
    names = SPLIT_NAMES if include_test else tuple(n for n in SPLIT_NAMES if n != "test")
    datasets = {
        name: WindowedDataset(
            features, labels, torch.from_numpy(np.flatnonzero(split == code).astype(np.int64)),
            int(meta["context"]), dates=dates, task_names=meta["tasks"],
            feature_names=meta["features"], ticker_ids=ticker_ids, tickers=meta["tickers"],
            pooled=bool(meta["pooled"]),
        )
        for code, name in enumerate(SPLIT_NAMES)
        if name in names
    }
    return DatasetSplits(
        train=datasets["train"], val=datasets["val"], withheld_test=datasets.get("test"),
        report=SplitReport.from_dict(meta["split_report"]),
        stats=RobustStats.from_dict(meta["normalisation"]), record=record,
    )
