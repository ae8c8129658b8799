"""Baselines on a market with nothing to predict score AUC ~0.5, on the model's exact
samples (same hash, same labels, the window's last row), and refuse other samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finscale.datasets.build import build_dataset
from finscale.datasets.load import DatasetSplits, open_splits
from finscale.evaluation.baselines import BaselineError, BaselineRun, run_baselines, scored_task
from finscale.evaluation.config import DEFAULT_SCORES, BaselinesConfig, ScoreColumn
from finscale.evaluation.metrics import choose_threshold, roc_auc
from finscale.evaluation.scored import SampleMismatchError, require_same_samples
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace
from tests.support.datasets import base_config, random_walk_bars
from tests.support.raw_workspace import fill_raw_workspace, store_raw_market

ROWS = 6300  # business days from 2001 to the end of the default test range (2024)
MISSING = ScoreColumn(name="not-there", columns=("no_such_column",), description="absent")
# small grids: the test is about the samples, not about tuning
QUICK = BaselinesConfig(scores=(*DEFAULT_SCORES, MISSING), lags=(1,), logistic_c=(0.1,),
                        hgb_learning_rate=(0.1,), hgb_max_leaf_nodes=(7,), hgb_max_iter=50)
# |AUC - 0.5| beyond this many null standard errors is not noise
NOISE_SIGMAS = 4.0


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Manifest, Workspace,
                                                                       pd.DataFrame]]:
    """A constant-volatility random walk as SPY and an independent walk as the VIX."""
    workspace = Workspace.resolve(tmp_path_factory.mktemp("market") / "ws").ensure()
    manifest = Manifest(workspace.manifest_url, workspace.home)
    spy = random_walk_bars(ROWS, 1)
    store_raw_market(manifest, workspace, "SPY", spy)
    store_raw_market(manifest, workspace, "VIX", random_walk_bars(ROWS, 2))
    yield manifest, workspace, spy
    manifest.close()


def _splits(market: tuple[Manifest, Workspace, pd.DataFrame], *overrides: str,
            include_test: bool = True) -> DatasetSplits:
    manifest, workspace, _ = market
    config = base_config("dataset.tier=a50", "dataset.include_macro=false", *overrides)
    return open_splits(manifest, build_dataset(manifest, workspace, config),
                       include_test=include_test)


@pytest.fixture(scope="module")
def splits(market: tuple[Manifest, Workspace, pd.DataFrame]) -> DatasetSplits:
    return _splits(market)


@pytest.fixture(scope="module")
def run(splits: DatasetSplits) -> BaselineRun:
    return run_baselines(splits, QUICK)


def test_every_baseline_scores_noise_on_a_random_walk(run: BaselineRun,
                                                      splits: DatasetSplits) -> None:
    names = {r.name for r in run.results}
    assert names == {"baseline-base-rate", "baseline-vix_level", "baseline-atr_close",
                     "baseline-realised_vol_20", "baseline-day_range", "baseline-abs_return",
                     "baseline-logistic", "baseline-hgb"}
    assert len(run.results) == len(names) * len(splits.test.task_names)
    for result in run.results:
        metrics = result.test_metrics
        assert metrics is not None
        n1, n0 = metrics.positives, metrics.samples - metrics.positives
        null_se = np.sqrt((n1 + n0 + 1) / (12 * n1 * n0))  # Mann-Whitney under no signal
        assert abs(metrics.roc_auc - 0.5) < NOISE_SIGMAS * null_se, (result.name, result.task)
        if result.test is not None and result.test.probabilistic:
            assert metrics.skill < 0.01  # nothing beats the base rate on noise


def test_missing_columns_are_skipped_with_the_reason(run: BaselineRun) -> None:
    assert [(s.name, s.reason) for s in run.skipped] == [(
        "baseline-not-there",
        "none of the columns ['no_such_column'] is in this dataset (absent)")]


def test_baselines_score_the_models_samples(run: BaselineRun, splits: DatasetSplits) -> None:
    for result in run.results:
        assert result.val.sample_hash == splits.val.sample_hash
        assert result.test is not None and result.test.sample_hash == splits.test.sample_hash
        j = splits.test.task_names.index(result.task)
        np.testing.assert_array_equal(result.test.labels, splits.test.label_array()[:, j])
        np.testing.assert_array_equal(result.test.end_dates, splits.test.end_dates())
        # thresholds and orientation come from validation
        assert result.threshold == choose_threshold(result.val.labels, result.val.scores)
        if not result.val.probabilistic:
            assert roc_auc(result.val.labels, result.val.scores) >= 0.5


def test_a_score_is_read_at_the_windows_last_row(
    run: BaselineRun, splits: DatasetSplits, market: tuple[Manifest, Workspace, pd.DataFrame]
) -> None:
    close = market[2]["Close"]
    expected = np.abs(np.log(close / close.shift(1)))
    result = run.get("baseline-abs_return", splits.val.task_names[0])
    at_end = expected.loc[pd.DatetimeIndex(splits.val.end_dates())].to_numpy()
    sign = 1.0 if result.settings["orientation"] == "+" else -1.0
    # float32 storage of the scaled feature; no value of a constant-vol walk reaches the clip
    np.testing.assert_allclose(sign * result.val.scores, at_end, rtol=1e-4, atol=1e-7)


def test_different_samples_refuse_to_compare(
    run: BaselineRun, splits: DatasetSplits, market: tuple[Manifest, Workspace, pd.DataFrame]
) -> None:
    task = splits.val.task_names[1]
    baseline = run.get("baseline-vix_level", task)
    assert baseline.test is not None
    model_val = scored_task(splits.val, "val", task, "patchtst", np.full(len(splits.val), 0.5),
                            probabilistic=True)
    with pytest.raises(SampleMismatchError, match="not the same samples"):
        require_same_samples(model_val, baseline.test)
    other = _splits(market, "dataset.horizon=2")  # other labels, other samples
    model_h2 = scored_task(other.test, "test", other.test.task_names[1], "patchtst",
                           np.full(len(other.test), 0.5), probabilistic=True)
    assert other.test.sample_hash != splits.test.sample_hash
    with pytest.raises(SampleMismatchError):
        require_same_samples(model_h2, baseline.test)
    same = scored_task(splits.test, "test", task, "patchtst", np.full(len(splits.test), 0.5),
                       probabilistic=True)
    require_same_samples(same, baseline.test)  # the identical samples compare


def test_withheld_test_split_is_never_scored(
    market: tuple[Manifest, Workspace, pd.DataFrame]
) -> None:
    withheld = _splits(market, include_test=False)
    one_task = QUICK.model_copy(update={"scores": DEFAULT_SCORES[:1]})
    run = run_baselines(withheld, one_task)
    assert run.results and all(r.test is None and r.test_metrics is None for r in run.results)


def test_lags_beyond_the_window_are_refused(splits: DatasetSplits) -> None:
    with pytest.raises(BaselineError, match=r"lags \[80\] must lie in 1..79"):
        run_baselines(splits, QUICK.model_copy(update={"lags": (1, 80)}))




@pytest.mark.slow
def test_on_real_spy_the_vix_level_ranks_well(workspace: Workspace,
                                              shared_data_dir: Path) -> None:
    """The guard's other side: where there is signal the baselines find it (SPY H1 1%:
    VIX close test AUC 0.737, ATR14/close 0.732 measured with the default settings)."""
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        config = base_config("dataset.include_macro=false", "dataset.thresholds=[0.01]")
        splits = open_splits(manifest, build_dataset(manifest, workspace, config))
    finally:
        manifest.close()
    run = run_baselines(splits, QUICK.model_copy(update={"scores": DEFAULT_SCORES[:2]}))
    task = splits.test.task_names[0]
    for name in ("baseline-vix_level", "baseline-atr_close", "baseline-logistic"):
        metrics = run.get(name, task).test_metrics
        assert metrics is not None and metrics.roc_auc > 0.7, name
