"""build_dataset / open_splits on the real shared data: lineage, reuse, MD5, pooled, weekly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from finscale.datasets.assemble import align_blocks, drop_reasons
from finscale.datasets.build import build_dataset, dataset_config_hash, open_splits
from finscale.datasets.prepare import prepare_table
from finscale.io.atomic import ChecksumMismatchError
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace
from tests.support.datasets import base_config

REPO = Path(__file__).resolve().parents[3]


def test_build_registers_lineage_and_reuses_identical_inputs(
    filled: Manifest, workspace: Workspace
) -> None:
    record = build_dataset(filled, workspace, base_config())
    parents = {filled.get(i).name for i in record.parent_ids}
    assert {"features/a20/SPY", "raw/market/SPY", "raw/market/VIX", "raw/fred/DGS10"} <= parents
    assert record.kind == "dataset" and record.meta["tasks"] == [
        "y_h1_0.5pct", "y_h1_1pct", "y_h1_2pct", "y_h1_3pct"]
    again = build_dataset(filled, workspace, base_config())
    assert again.id == record.id
    splits = open_splits(filled, record)
    assert splits.train.features.data_ptr() == splits.test.features.data_ptr()
    assert splits.report.get("val").samples == len(splits.val) >= 200
    # stored normalisation was fitted on train rows: train medians ~0 after scaling
    train_rows = splits.train.features[splits.train.positions]
    assert torch.median(train_rows, dim=0).values.abs().max() < 0.2
    assert float(splits.val.features.abs().max()) <= base_config().dataset.clip + 1e-6
    # val/test sample spans stay inside their ranges
    first_val = splits.val.dates[int(splits.val.positions[0]) - splits.val.context + 1]
    assert first_val >= np.datetime64("2015-01-01")


def test_open_refuses_a_tampered_file(filled: Manifest, workspace: Workspace) -> None:
    record = build_dataset(filled, workspace, base_config())
    path = filled.absolute(record)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ChecksumMismatchError, match="does not match"):
        open_splits(filled, record)


def test_pooled_dataset_yields_ticker_ids(filled: Manifest, workspace: Workspace) -> None:
    config = base_config("dataset.pooled_tickers=[SPY,DIA]", "dataset.include_macro=false")
    record = build_dataset(filled, workspace, config)
    assert record.name == "datasets/pool-SPY-DIA/a20/daily/h1"
    splits = open_splits(filled, record)
    ids = splits.train.ticker_ids[splits.train.positions]
    assert set(ids.tolist()) == {0, 1}
    x, _y, ticker = splits.train.batch(torch.tensor([0, len(splits.train) - 1]))
    assert x.shape[0] == 2 and ticker.tolist() == [0, 1]
    # no window mixes two tickers
    ends = splits.train.positions
    starts = ends - splits.train.context + 1
    assert torch.equal(splits.train.ticker_ids[starts], splits.train.ticker_ids[ends])


def test_weekly_dataset_labels_from_weekly_bars(filled: Manifest, workspace: Workspace) -> None:
    config = base_config("dataset.timescale=weekly", "dataset.context=20",
                     "dataset.splits.min_samples=100")
    record = build_dataset(filled, workspace, config)
    assert record.meta["tasks"][0] == "y_w1_0.5pct"
    splits = open_splits(filled, record)
    dates = splits.train.end_dates()
    gaps = np.diff(dates).astype("timedelta64[D]").astype(int)
    assert gaps.min() >= 1 and np.median(gaps) == 7


def test_drop_report_names_the_column_and_until_when() -> None:
    index = pd.date_range("2020-01-01", periods=6, freq="D")
    late = pd.DataFrame({"late_z": [np.nan, np.nan, np.nan, 1.0, 2.0, 3.0],
                         "early": [np.nan, 1.0, 1.0, 1.0, 1.0, 1.0]}, index=index)
    warm = pd.DataFrame({"sma": [np.nan, 1.0, 2.0, 3.0, 4.0, 5.0]}, index=index)
    _, missing = align_blocks(pd.DatetimeIndex(index), {"tier": warm, "macro": late})
    keep, counts = drop_reasons(missing, len(index))
    assert keep.tolist() == [False, False, False, True, True, True]
    assert counts == {"missing tier (sma until 2020-01-01)": 1,
                      "missing macro (late_z until 2020-01-03)": 2}


def _tiers_copy(tmp_path: Path, name: str, file: str = "", old: str = "", new: str = "") -> Path:
    """A copy of configs/features under ``tmp_path/name``; ``old`` -> ``new`` in ``file``."""
    folder = tmp_path / name
    shutil.copytree(REPO / "configs" / "features", folder)
    if file:
        text = (folder / file).read_text()
        assert text.count(old) == 1
        (folder / file).write_text(text.replace(old, new))
    return folder


def test_tier_yaml_edits_under_tiers_dir_reach_the_dataset(
    filled: Manifest, workspace: Workspace, tmp_path: Path
) -> None:
    default = base_config("dataset.include_macro=false")
    unchanged = _tiers_copy(tmp_path, "same")
    same = base_config("dataset.include_macro=false", f"features.tiers_dir={unchanged}")
    assert dataset_config_hash(same) == dataset_config_hash(default)
    edited = _tiers_copy(tmp_path, "vix", "vix.yaml",
                         "vix_sma, inputs: [VIX], params: {window: 10}",
                         "vix_sma, inputs: [VIX], params: {window: 15}")
    changed = base_config("dataset.include_macro=false", f"features.tiers_dir={edited}")
    assert dataset_config_hash(changed) != dataset_config_hash(default)
    # the edited window is what prepare computes (not the default folder's vix.yaml)
    before = prepare_table(filled, workspace, same).table["vix_sma_10"]
    after = prepare_table(filled, workspace, changed).table["vix_sma_10"]
    assert before.index.equals(after.index) and not np.allclose(before, after)
    # macro.yaml declarations are covered too
    macro = _tiers_copy(tmp_path, "macro", "macro.yaml", "{series: CPIAUCSL, periods: 12}",
                        "{series: CPIAUCSL, periods: 6}")
    with_macro = base_config(f"features.tiers_dir={macro}")
    assert dataset_config_hash(with_macro) != dataset_config_hash(base_config())
