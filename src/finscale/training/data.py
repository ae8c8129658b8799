"""Batches for the trainer: a deterministic order per epoch and one fetch path for any dataset.

A dataset with a fast ``batch(indices)`` gather (the windowed datasets) is used as is; any
other torch Dataset yielding (x, y) is stacked item by item. The order of an epoch depends
only on (seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch.utils.data import DataLoader, Dataset

EPOCH_SEED_STRIDE = 1_000_003


@runtime_checkable
class BatchSource(Protocol):
    """A dataset that gathers a whole batch at once (``WindowedDataset`` is one)."""

    def __len__(self) -> int: ...

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


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
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Fetch ``batches`` in order; ``num_workers`` > 0 prefetches in worker processes."""
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


def label_counts(source: BatchSource, batch_size: int) -> tuple[torch.Tensor, int]:
    """Positives per task and the sample count (for pos_weight=balanced, train split only)."""
    n = len(source)
    positives: torch.Tensor | None = None
    for indices in split_batches(torch.arange(n), batch_size):
        y = source.batch(indices)[1].to(torch.float64)
        summed = y.sum(dim=0)
        positives = summed if positives is None else positives + summed
    if positives is None:
        raise ValueError("train split is empty")
    return positives, n
