"""Batches for the trainer: a deterministic order per epoch and one fetch path for any dataset.

A dataset with a fast ``batch(indices)`` gather (the windowed datasets) is used as is; any
other torch Dataset yielding (x, y) is stacked item by item. The order of an epoch depends
only on (seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

EPOCH_SEED_STRIDE = 1_000_003


@runtime_checkable
class BatchSource(Protocol):
    """A dataset that gathers a whole batch at once (``WindowedDataset`` is one)."""

    def __len__(self) -> int: ...

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


@runtime_checkable
class LabelSource(Protocol):
    """A dataset that returns all its labels without touching the inputs (``WindowedDataset``)."""

    def label_array(self) -> np.ndarray: ...


class StackedBatches:
    """Adapter: any map-style Dataset of (x, y, ...) becomes a ``BatchSource``."""

    def __init__(self, dataset: Dataset[tuple[torch.Tensor, ...]]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        items = [self.dataset[int(i)] for i in indices]
        return torch.stack([item[0] for item in items]), torch.stack([item[1] for item in items])


def as_batch_source(dataset: Dataset[tuple[torch.Tensor, ...]] | BatchSource) -> BatchSource:
    """The dataset itself when it can gather batches, else a stacking adapter."""
    if isinstance(dataset, BatchSource):
        return dataset
    return StackedBatches(dataset)


class _IndexBatches(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """A Dataset whose 'items' are whole batches, keyed by an index tensor (for DataLoader)."""

    def __init__(self, source: BatchSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        x, y = self.source.batch(indices)[:2]
        return x, y


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of sample indices for ``epoch``: a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(seed * EPOCH_SEED_STRIDE + epoch)
    return torch.randperm(n, generator=generator)


def split_batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Consecutive chunks of ``order`` (the last may be short)."""
    return list(torch.split(order, batch_size))


def group_batches(batches: Sequence[torch.Tensor], accumulation: int) -> list[list[torch.Tensor]]:
    """Micro-batches grouped per optimiser step (gradient accumulation)."""
    return [list(batches[i : i + accumulation]) for i in range(0, len(batches), accumulation)]


def iterate(
    source: BatchSource, batches: Sequence[torch.Tensor], num_workers: int
) -> Generator[tuple[torch.Tensor, torch.Tensor], None, None]:
    """Fetch ``batches`` in order; ``num_workers`` > 0 prefetches them in worker processes
    (one DataLoader for all of ``batches``: pass a whole epoch, not one step's group)."""
    if num_workers == 0:
        for indices in batches:
            x, y = source.batch(indices)[:2]
            yield x, y
        return
    # an own generator: worker seeding must not draw from the global RNG (dropout's stream)
    loader = DataLoader(
        _IndexBatches(source), sampler=list(batches), batch_size=None, num_workers=num_workers,
        generator=torch.Generator().manual_seed(0),
    )
    yield from loader


def collect_labels(
    data: Dataset[tuple[torch.Tensor, ...]] | BatchSource, batch_size: int
) -> torch.Tensor:
    """Every label of ``data`` in order, (N, n_tasks) float.

    ``label_array()`` when the dataset has it (no input window is gathered); a generic
    Dataset is read batch by batch, since its items come as (x, y) pairs.
    """
    if isinstance(data, LabelSource):
        return torch.as_tensor(data.label_array()).float()
    source = as_batch_source(data)
    batches = split_batches(torch.arange(len(source)), batch_size)
    if not batches:
        return torch.empty(0, 0)
    return torch.cat([source.batch(indices)[1].float() for indices in batches])


def label_counts(source: BatchSource, batch_size: int) -> tuple[torch.Tensor, int]:
    """Positives per task and the sample count (for pos_weight=balanced, train split only)."""
    labels = collect_labels(source, batch_size)
    if labels.shape[0] == 0:
        raise ValueError("train split is empty")
    return labels.to(torch.float64).sum(dim=0), int(labels.shape[0])
