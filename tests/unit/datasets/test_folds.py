"""Walk-forward folds as datasets: fold k's ranges drive splits, normalisation and the floor."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from finscale.config import ConfigError, load_config
from finscale.datasets.assemble import PreparedTable, assemble_table
from finscale.datasets.build import build_dataset, dataset_name, open_splits
from finscale.datasets.config import (
    DatasetConfig,
    DateRange,
    WalkForwardConfig,
)
from finscale.datasets.describe import describe_horizons
from finscale.datasets.prepare import prepare_table
from finscale.datasets.splits import (
    SplitTooSmallError,
    fold_splits,
    walk_forward_folds,
)
from finscale.datasets.table import assign_splits, normalised_frame
from finscale.manifest.store import Manifest
from finscale.training.run_key import RunKey
from finscale.workspace import Workspace
from tests.support.datasets import base_config, random_walk_bars

from .test_splits import CONTEXT, HORIZON, THRESHOLDS, _config

REPO = Path(__file__).resolve().parents[3]
WARMUP = 7
SYNTH_FOLDS = WalkForwardConfig(folds=3, val_days=50)


def _synthetic_config(fold: int) -> DatasetConfig:
    return _config(walk_forward=SYNTH_FOLDS.model_copy(update={"fold": fold}))


def _prepared(bars: pd.DataFrame) -> PreparedTable:
    rng = np.random.default_rng(7)
    feature = pd.DataFrame({"f": rng.normal(0, 1, len(bars)).cumsum(),
                            "g": rng.lognormal(0, 1, len(bars))}, index=bars.index)
    feature.iloc[:WARMUP] = np.nan
    table, feats, tasks, report = assemble_table(
        bars, {"features": feature}, ticker="T", ticker_id=0, horizon=HORIZON,
        thresholds=THRESHOLDS, timescale="daily")
    return PreparedTable(table=table, features=tuple(feats), tasks=tuple(tasks), tickers=("T",),
                         drops=(report,), parents=())


def _brute_force_ends(bars: pd.DataFrame, rng: DateRange) -> list[int]:
    """Bar numbers t whose context start and label end (bar t + H) both lie inside ``rng``."""
    dates = [d.date() for d in bars.index]
    return [t for t in range(len(bars))
            if t - CONTEXT + 1 >= WARMUP and t + HORIZON < len(bars)
            and rng.start <= dates[t - CONTEXT + 1] and dates[t + HORIZON] <= rng.end]


@pytest.mark.parametrize("fold", [0, 1, 2])
def test_fold_splits_are_chronological_disjoint_and_spans_fit(fold: int) -> None:
    bars = random_walk_bars(500, seed=1)
    prepared = _prepared(bars)
    config = _synthetic_config(fold)
    ranges = fold_splits(config.splits)
    assert ranges.train.end == date(2001, 8, 31) + timedelta(days=50 * fold)
    assert ranges.train.end < ranges.val.start <= ranges.val.end < ranges.test.start
    resolved = config.model_copy(update={"splits": ranges})
    positions, report = assign_splits(prepared, resolved)
    sessions = prepared.table["session"].to_numpy()
    for name, rng in (("train", ranges.train), ("val", ranges.val), ("test", ranges.test)):
        assert sessions[positions[name]].tolist() == _brute_force_ends(bars, rng)
        assert report.get(name).range_start == str(rng.start)
        assert report.get(name).samples == positions[name].size > 0
    # chronological: every train sample ends before every val sample's context starts
    first_val_span = positions["val"][0] - CONTEXT + 1
    assert positions["train"].max() < first_val_span
    assert positions["val"].max() < positions["test"][0] - CONTEXT + 1
    every = np.concatenate(list(positions.values()))
    assert np.unique(every).size == every.size


def test_fold_normalisation_is_a_direct_fit_on_that_folds_train_rows() -> None:
    bars = random_walk_bars(500, seed=1)
    prepared = _prepared(bars)
    for fold in (0, 2):
        config = _synthetic_config(fold)
        resolved = config.model_copy(update={"splits": fold_splits(config.splits)})
        positions, _ = assign_splits(prepared, resolved)
        _, stats = normalised_frame(prepared, positions, resolved)
        # direct: the rows of every brute-force train sample's context, nothing else
        ends = _brute_force_ends(bars, resolved.splits.train)
        rows = sorted({r for t in ends for r in range(t - CONTEXT + 1, t + 1)})
        values = prepared.table.set_index("session").loc[rows, list(prepared.features)]
        q25, median, q75 = np.percentile(values.to_numpy(), [25, 50, 75], axis=0)
        np.testing.assert_allclose(stats.median, median)
        np.testing.assert_allclose(stats.scale, q75 - q25)
        # rows after the fold's train range do not move the statistics
        table = prepared.table.copy()
        later = table.index > pd.Timestamp(resolved.splits.train.end)
        table.loc[later, list(prepared.features)] *= 1000.0
        changed = PreparedTable(table=table, features=prepared.features, tasks=prepared.tasks,
                                tickers=prepared.tickers, drops=prepared.drops, parents=())
        _, moved = normalised_frame(changed, positions, resolved)
        np.testing.assert_array_equal(moved.median, stats.median)
        np.testing.assert_array_equal(moved.scale, stats.scale)


def test_fold_out_of_range_names_the_fold_count() -> None:
    with pytest.raises(ConfigError, match=r"fold 3 is out of range: walk_forward has 3 folds"):
        load_config(REPO / "configs" / "base.yaml",
                    overrides=["dataset.splits.walk_forward.fold=3"])
    # the fold count is enforced by the model itself, not only by the YAML loader
    with pytest.raises(ValidationError, match=r"fold 5 is out of range: walk_forward has 3 folds"):
        WalkForwardConfig(folds=3, val_days=50, fold=5)


def test_folds_reaching_the_test_range_are_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="reaches the test range"):
        load_config(REPO / "configs" / "base.yaml",
                    overrides=["dataset.splits.walk_forward={folds: 4, val_days: 480}"])


def test_fold_without_walk_forward_uses_default_folds() -> None:
    config = load_config(REPO / "configs" / "base.yaml",
                         overrides=["dataset.splits.walk_forward.fold=1"])
    splits = config.dataset.splits
    assert splits.fold == 1 and splits.walk_forward is not None
    assert fold_splits(splits) == walk_forward_folds(splits)[1]
    assert dataset_name(config.dataset).endswith("/h1/fold1")
    fixed = load_config(REPO / "configs" / "base.yaml")
    assert fixed.dataset.splits.fold is None
    assert fold_splits(fixed.dataset.splits) == fixed.dataset.splits
    assert not dataset_name(fixed.dataset).endswith("fold1")


def test_default_folds_on_spy_build_two_artifacts_and_two_run_keys(
    filled: Manifest, workspace: Workspace
) -> None:
    configs = [base_config(f"dataset.splits.walk_forward.fold={k}") for k in (0, 2)]
    records = [build_dataset(filled, workspace, c) for c in configs]
    assert [r.name for r in records] == ["datasets/SPY/a20/daily/h1/fold0",
                                         "datasets/SPY/a20/daily/h1/fold2"]
    assert records[0].config_hash != records[1].config_hash
    assert [r.meta["fold"] for r in records] == [0, 2]
    assert all(r.meta["folds"] == 3 for r in records)
    keys = [RunKey.from_config(c) for c in configs]
    assert keys[0] != keys[1] and keys[0].as_tag() != keys[1].as_tag()
    assert keys[0].as_tag().endswith("|fold=0")
    prepared = prepare_table(filled, workspace, configs[1])
    values = prepared.table[list(prepared.features)].to_numpy(dtype=np.float64)
    dates = prepared.table.index
    for config, record in zip(configs, records, strict=True):
        ranges = fold_splits(config.dataset.splits)
        splits = open_splits(filled, record)
        # the default folds pass the floor on SPY (val_days 480 with context 80)
        assert all(s.samples >= config.dataset.splits.min_samples
                   for s in splits.report.splits)
        assert splits.report.get("val").range_start == str(ranges.val.start)
        # spans inside the fold's ranges
        for name, rng in (("train", ranges.train), ("val", ranges.val)):
            data = getattr(splits, name)
            pos = data.positions.numpy()
            assert dates[pos - data.context + 1].min() >= pd.Timestamp(rng.start)
            assert (pd.DatetimeIndex(prepared.table["label_end"].iloc[pos]).max()
                    <= pd.Timestamp(rng.end))
        # stored stats: a direct fit on the rows of this fold's train samples
        ends = splits.train.positions.numpy()
        rows = np.unique((ends[:, None] + np.arange(-(splits.train.context - 1), 1)).ravel())
        assert dates[rows].max() <= pd.Timestamp(ranges.train.end)
        median = np.nanmedian(values[rows], axis=0)
        np.testing.assert_allclose(splits.stats.median, np.where(np.isfinite(median), median, 0))
    assert records[0].meta["normalisation"] != records[1].meta["normalisation"]
    # unchanged inputs: the fold's artifact is reused, not rebuilt
    assert build_dataset(filled, workspace, configs[0]).id == records[0].id


def test_fold_below_min_samples_names_the_fold(filled: Manifest, workspace: Workspace) -> None:
    config = base_config("dataset.splits.walk_forward={folds: 3, val_days: 365, fold: 1}")
    with pytest.raises(SplitTooSmallError,
                       match=r"h1/fold1 \(walk-forward fold 1 of 3\): .*val=1\d\d"):
        build_dataset(filled, workspace, config)


def test_describe_with_a_fold_reports_only_that_fold(
    filled: Manifest, workspace: Workspace
) -> None:
    config = base_config("dataset.splits.walk_forward.fold=2", "dataset.report_horizons=[1]")
    reports = describe_horizons(filled, workspace, config, include_weekly=False)
    assert [r.fold for r in reports] == [2]
    val = reports[0].report.get("val")
    assert val.range_start == str(fold_splits(config.dataset.splits).val.start)
