"""Windows are views over one tensor; batches equal stacked samples; hashes identify samples."""

from __future__ import annotations

import numpy as np
import psutil
import pytest
import torch
from torch.utils.data import DataLoader

from finscale.datasets.windows import WindowedDataset

CONTEXT = 80


def _dataset(rows: int, n_features: int, pooled: bool = False, seed: int = 0) -> WindowedDataset:
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(rows, n_features, generator=gen)
    labels = (torch.rand(rows, 4, generator=gen) > 0.5).float()
    positions = torch.arange(CONTEXT - 1, rows)
    dates = np.datetime64("1990-01-01") + np.arange(rows).astype("timedelta64[D]")
    ticker_ids = torch.arange(rows) % 2 if pooled else None
    return WindowedDataset(features, labels, positions, CONTEXT, dates=dates,
                           task_names=[f"t{i}" for i in range(4)],
                           feature_names=[f"f{i}" for i in range(n_features)],
                           ticker_ids=ticker_ids, pooled=pooled)


def test_100k_samples_are_views_not_copies() -> None:
    torch.set_num_threads(1)
    rows, n_features = 100_000 + CONTEXT - 1, 32
    process = psutil.Process()
    before = process.memory_info().rss
    dataset = _dataset(rows, n_features)
    base_bytes = dataset.features.numel() * 4 + dataset.labels.numel() * 4
    assert len(dataset) == 100_000
    base_ptr = dataset.features.untyped_storage().data_ptr()
    storages = set()
    for index in range(0, len(dataset), 997):
        x, y = dataset[index]
        assert x.shape == (CONTEXT, n_features) and y.shape == (4,)
        assert x.untyped_storage().data_ptr() == base_ptr
        storages.add(x.untyped_storage().data_ptr())
    assert storages == {base_ptr}
    # one tensor's bytes (features + labels + positions), not 100k copied windows (1 GB)
    grown = process.memory_info().rss - before
    per_sample_copies = len(dataset) * CONTEXT * n_features * 4
    assert grown < 3 * base_bytes + 64 * 2**20, f"memory grew {grown / 2**20:.0f} MiB"
    assert grown < per_sample_copies / 10
    last_x, _ = dataset[len(dataset) - 1]
    torch.testing.assert_close(last_x, dataset.features[-CONTEXT:])


def test_batch_equals_stacked_items_and_loader_works() -> None:
    dataset = _dataset(500, 5)
    indices = torch.tensor([0, 7, 3, 400])
    x, y = dataset.batch(indices)
    assert x.shape == (4, CONTEXT, 5) and y.shape == (4, 4)
    expected = torch.stack([dataset[int(i)][0] for i in indices])
    torch.testing.assert_close(x, expected)
    loader = DataLoader(dataset, batch_size=64, shuffle=False)
    xb, _yb = next(iter(loader))
    torch.testing.assert_close(xb, torch.stack([dataset[i][0] for i in range(64)]))
    assert sum(len(b[0]) for b in dataset.iter_batches(100)) == len(dataset)


def test_pooled_samples_carry_ticker_id() -> None:
    dataset = _dataset(300, 3, pooled=True)
    _x, _y, ticker = dataset[5]
    assert int(ticker) == int(dataset.positions[5]) % 2
    _, _, tickers = dataset.batch(torch.tensor([5, 6]))
    assert tickers.tolist() == [int(dataset.positions[5]) % 2, int(dataset.positions[6]) % 2]


def test_sample_hash_tracks_samples_and_labels() -> None:
    a, b = _dataset(300, 3), _dataset(300, 3)
    assert a.sample_hash == b.sample_hash
    labels = a.labels.clone()
    labels[int(a.positions[10]), 0] = 1 - labels[int(a.positions[10]), 0]
    changed = WindowedDataset(a.features, labels, a.positions, CONTEXT, dates=a.dates,
                              task_names=a.task_names, feature_names=a.feature_names)
    assert changed.sample_hash != a.sample_hash
    fewer = WindowedDataset(a.features, a.labels, a.positions[1:], CONTEXT, dates=a.dates,
                            task_names=a.task_names, feature_names=a.feature_names)
    assert fewer.sample_hash != a.sample_hash


def test_bad_positions_and_nan_labels_are_refused() -> None:
    a = _dataset(300, 3)
    with pytest.raises(ValueError, match="context outside"):
        WindowedDataset(a.features, a.labels, torch.tensor([5]), CONTEXT, dates=a.dates,
                        task_names=a.task_names, feature_names=a.feature_names)
    labels = a.labels.clone()
    labels[-1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN label"):
        WindowedDataset(a.features, labels, a.positions, CONTEXT, dates=a.dates,
                        task_names=a.task_names, feature_names=a.feature_names)
