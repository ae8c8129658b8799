"""The results table: one row per run x target from finished runs with a scored test split,
identity and flags per row, typed columns that survive Parquet and CSV, and fit rows that
leave out (and count) collapsed and thermal-stopped runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finscale.evaluation.metrics import reliability_metrics, reliability_table
from finscale.evaluation.results import (
    RESULT_COLUMNS,
    ResultsSchemaError,
    read_results,
    results_from_runs,
    rows_for_fits,
    write_results,
)
from finscale.tracking import RunRecord

TARGETS = ("y_h1_1pct", "y_h1_2pct")


def _run(run_id: str, *, seed: int = 0, budget: str = "100k", status: str = "FINISHED",
         tags: dict[str, str] | None = None, metrics: dict[str, float] | None = None
         ) -> RunRecord:
    key = {"phase": "dev", "tickers": "SPY", "timescale": "daily", "tier": "a20",
           "horizon": "1", "budget": budget, "task": "all", "seed": str(seed),
           "settings": "abc123def0"}
    base_tags = {**key, "run_key": "|".join(f"{k}={v}" for k, v in key.items()),
                 "dataset_md5": "d" * 32, "input_md5s": "raw/market/SPY:" + "e" * 32,
                 "sample_hash_val": "v" * 16, "sample_hash_test": "t" * 16,
                 "test_split": "scored", "stop_reason": "early_stopping",
                 "collapsed": "false", "collapsed_tasks": "none"}
    params = {"n_parameters": "101234",
              **{f"split.val.positives.{t}": "40" for t in TARGETS}}
    default_metrics = {f"test_auc_{t}": 0.6 + 0.01 * j for j, t in enumerate(TARGETS)}
    return RunRecord(run_id, "1", status, {**base_tags, **(tags or {})}, params,
                     {**default_metrics, **(metrics or {})})


def test_rows_per_target_with_identity_and_flags() -> None:
    runs = [
        _run("a"),
        _run("b", seed=1, tags={"collapsed": "true", "collapsed_tasks": "y_h1_2pct"},
             metrics={"test_roc_auc_y_h1_1pct": 0.71, "test_log_loss_y_h1_1pct": 0.52}),
        _run("c", seed=2, tags={"stop_reason": "thermal"}),
        _run("d", status="FAILED"),
        _run("e", tags={"test_split": "withheld"}),
        _run("f", tags={"model": "baseline-vix_level"}),
    ]
    table = results_from_runs(runs, "demo")
    frame = table.frame
    assert list(frame.columns) == list(RESULT_COLUMNS)
    assert len(frame) == 4 * len(TARGETS)
    assert table.skipped_runs == {"status FAILED": 1, "test split withheld (selection run)": 1}
    b = frame[frame["run_id"] == "b"].set_index("target")
    assert b.loc["y_h1_1pct", "test_auc"] == 0.71  # evaluation's name wins over the trainer's
    assert b.loc["y_h1_2pct", "test_auc"] == pytest.approx(0.61)
    assert b.loc["y_h1_1pct", "test_log_loss"] == 0.52
    assert math.isnan(b.loc["y_h1_2pct", "test_log_loss"])
    assert b["collapsed"].tolist() == [False, True]  # judged per target
    assert frame[frame["run_id"] == "c"]["thermal_stopped"].all()
    row = frame.iloc[0]
    assert (row["experiment"], row["phase"], row["horizon"], row["seed"], row["n_parameters"],
            row["model"]) == ("demo", "dev", 1, 0, 101234, "patchtst")
    assert pd.isna(row["fold"]) and row["run_identity"] == row["run_key"]
    assert set(frame["model"]) == {"patchtst", "baseline-vix_level"}


def test_reliability_round_trips_through_metrics() -> None:
    rng = np.random.default_rng(0)
    probs = rng.uniform(0.05, 0.6, 500)
    labels = (rng.random(500) < probs).astype(float)
    bins = reliability_table(labels, probs, bins=5)
    metrics = reliability_metrics(bins, "test_", "y_h1_1pct")
    frame = results_from_runs([_run("a", metrics=metrics)], "demo").frame
    stored = json.loads(frame.set_index("target").loc["y_h1_1pct", "test_reliability"])
    assert [b["count"] for b in stored] == bins["count"].tolist()
    np.testing.assert_allclose([b["observed_rate"] for b in stored], bins["observed_rate"])
    assert frame.set_index("target").loc["y_h1_2pct", "test_reliability"] == ""


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_table_survives_parquet_and_csv(tmp_path: Path, suffix: str) -> None:
    runs = [_run("a"), _run("b", seed=1, tags={"collapsed": "true", "fold": "2",
                                                "collapsed_tasks": "y_h1_1pct,y_h1_2pct"})]
    frame = results_from_runs(runs, "demo").frame
    parquet, csv = write_results(frame, tmp_path / "reports")
    back = read_results(parquet if suffix == ".parquet" else csv)
    pd.testing.assert_frame_equal(back, frame)
    assert back["collapsed"].tolist() == [False, False, True, True]
    assert not list(tmp_path.joinpath("reports").glob("*.tmp*"))


def test_fit_rows_leave_out_and_count_collapsed_and_thermal_runs() -> None:
    runs = [_run("a"), _run("b", seed=1, tags={"collapsed": "true"}),
            _run("c", seed=2, tags={"stop_reason": "thermal", "collapsed": "true"}),
            _run("d", seed=3, tags={"stop_reason": "thermal"})]
    for run in runs:
        run.tags.pop("collapsed_tasks")  # older runs: one run-level flag
    frame = results_from_runs(runs, "demo").frame
    fit = rows_for_fits(frame, "test_auc")
    assert set(fit.frame["run_id"]) == {"a"}
    assert fit.excluded == {"collapsed": 4, "thermal-stopped": 2}
    no_loss = rows_for_fits(frame, "test_log_loss")
    assert no_loss.frame.empty and no_loss.excluded["no test_log_loss"] == 2


def test_a_table_without_the_schema_is_refused() -> None:
    with pytest.raises(ResultsSchemaError, match=r"lacks columns.*'collapsed'"):
        rows_for_fits(pd.DataFrame({"test_auc": [0.5]}), "test_auc")
