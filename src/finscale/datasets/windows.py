"""Zero-copy windowed samples over one contiguous feature tensor.

A dataset holds ONE float32 tensor of features (T, F) and one of labels (T, n_tasks).
A sample is named by its end position p (the last row of its context): its input is
rows p-context+1 .. p and its label is row p. ``__getitem__`` returns a view into the
feature tensor (``unfold``), never a copy; ``batch`` gathers a whole batch with one
``index_select`` (the only copy, and the one a batch needs anyway).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

Sample = tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def sample_hash(
    end_dates: np.ndarray, ticker_ids: np.ndarray, labels: np.ndarray
) -> str:
    """SHA-256 (16 hex) of the samples' end dates, ticker ids and labels.

    Two consumers (a model and its baselines) that report the same hash scored the
    identical sample set on the identical targets.
    """
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(end_dates.astype("datetime64[D]").astype(np.int64)))
    digest.update(np.ascontiguousarray(ticker_ids.astype(np.int64)))
    digest.update(np.ascontiguousarray(np.nan_to_num(labels.astype(np.float32), nan=-1.0)))
    return digest.hexdigest()[:16]


class WindowedDataset(Dataset[Sample]):
    """Samples of one split over shared feature/label tensors.

    Attributes:
        features: (T, F) float32, contiguous; shared by every split of a dataset.
        labels: (T, n_tasks) float32 (NaN only on rows that are never a sample end).
        positions: (N,) int64 end positions of this split's samples.
        context: rows per input window.
        ticker_ids: (T,) int64 ticker id of each row (all 0 for a single ticker).
        pooled: whether samples also yield their ticker id.
        sample_hash: hash of (end dates, ticker ids, labels) of this split's samples.
    """

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        positions: torch.Tensor,
        context: int,
        *,
        dates: np.ndarray,
        task_names: Sequence[str],
        feature_names: Sequence[str],
        ticker_ids: torch.Tensor | None = None,
        tickers: Sequence[str] = (),
        pooled: bool = False,
    ) -> None:
        if features.dtype != torch.float32 or features.dim() != 2:
            raise ValueError(f"features must be a (T, F) float32 tensor, got {features.dtype} "
                             f"{tuple(features.shape)}")
        if labels.shape[0] != features.shape[0]:
            raise ValueError(f"labels have {labels.shape[0]} rows, features {features.shape[0]}")
        positions = positions.to(torch.int64)
        if len(positions) and (int(positions.min()) < context - 1
                               or int(positions.max()) >= features.shape[0]):
            raise ValueError("a sample end position leaves its context outside the tensor")
        self.features = features.contiguous()
        self.labels = labels.to(torch.float32).contiguous()
        self.positions = positions
        self.context = int(context)
        self.dates = dates
        self.task_names = tuple(task_names)
        self.feature_names = tuple(feature_names)
        rows = features.shape[0]
        self.ticker_ids = (
            torch.zeros(rows, dtype=torch.int64) if ticker_ids is None else ticker_ids.long()
        )
        self.tickers = tuple(tickers)
        self.pooled = pooled
        # (T - context + 1, context, F): a strided view, no copy
        self.windows = self.features.unfold(0, self.context, 1).transpose(1, 2)
        self._offsets = torch.arange(self.context, dtype=torch.int64) - (self.context - 1)
        used = self.labels[self.positions]
        if torch.isnan(used).any():
            raise ValueError("a sample end position has a NaN label")
        index = self.positions.numpy()
        self.sample_hash = sample_hash(
            dates[index], self.ticker_ids.numpy()[index], used.numpy()
        )

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def n_tasks(self) -> int:
        return int(self.labels.shape[1])

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def __getitem__(self, index: int) -> Sample:
        """(x (context, F) view, y (n_tasks,)[, ticker id]) of sample ``index``."""
        end = int(self.positions[index])
        x = self.windows[end - self.context + 1]
        y = self.labels[end]
        if self.pooled:
            return x, y, self.ticker_ids[end]
        return x, y

    def batch(self, indices: torch.Tensor) -> Sample:
        """A batch of samples by index into this split (0 .. len-1), one gather.

        Returns x (B, context, F) contiguous, y (B, n_tasks) and, when pooled, ticker ids (B,).
        """
        return self.batch_at(self.positions[indices])

    def batch_at(self, positions: torch.Tensor) -> Sample:
        """Like ``batch`` but by end positions in the shared tensor (``self.positions[i]``)."""
        rows = (positions.long().unsqueeze(1) + self._offsets).reshape(-1)
        x = torch.index_select(self.features, 0, rows).view(
            len(positions), self.context, self.n_features
        )
        y = self.labels[positions]
        if self.pooled:
            return x, y, self.ticker_ids[positions]
        return x, y

    def iter_batches(
        self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[Sample]:
        """Batches covering every sample once (the last may be short)."""
        order = (
            torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        )
        for start in range(0, len(self), batch_size):
            yield self.batch(order[start : start + batch_size])

    def end_dates(self) -> np.ndarray:
        """Dates of this split's sample end rows."""
        return self.dates[self.positions.numpy()]

    def label_array(self) -> np.ndarray:
        """(N, n_tasks) labels of this split's samples (for baselines and metrics)."""
        return self.labels[self.positions].numpy()

    def last_step_features(self) -> np.ndarray:
        """(N, F) features at each sample's end row (the input of a linear baseline)."""
        return self.features[self.positions].numpy()
