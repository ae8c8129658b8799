"""On a market with nothing to predict (a constant-volatility random walk as SPY and an
independent one as the VIX), tiny models at four budgets and every baseline score test AUC
within noise of 0.5, and the report labels every fitted curve (log loss, 1 - AUC, 1 - skill)
flat."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from finscale.config import load_config
from finscale.evaluation.publish import ReportSource, publish_report
from finscale.evaluation.results import load_results
from finscale.evaluation.runner import score_and_log_baselines
from finscale.manifest.store import Manifest
from finscale.training.run import train_run
from finscale.workspace import Workspace
from tests.support.datasets import random_walk_bars
from tests.support.raw_workspace import store_raw_market

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
ROWS = 6300  # business days from 2001 to the end of the default test range (2024)
EXPERIMENT = "random-walk"
BUDGETS = ("10k", "20k", "40k", "80k")
NOISE_SIGMAS = 4.0  # |AUC - 0.5| beyond this many null standard errors is not noise
SETTINGS = [
    "experiment.name=random-walk", "experiment.phase=rw", f"tracking.experiment={EXPERIMENT}",
    "dataset.include_macro=false", "dataset.thresholds=[0.01]", "dataset.context=32",
    "training.epochs=1", "training.device=cpu", "thermal.sensor=none",
    "training.log_model=false", "evaluation.bootstrap.replicates=50",
    "evaluation.fit_replicates=100", "evaluation.baselines.lags=[1]",
    "evaluation.baselines.logistic_c=[0.1]", "evaluation.baselines.hgb_learning_rate=[0.1]",
    "evaluation.baselines.hgb_max_leaf_nodes=[7]", "evaluation.baselines.hgb_max_iter=20",
]


def _null_se(positives: float, samples: float) -> float:
    """The Mann-Whitney standard error of an AUC with no signal."""
    negatives = samples - positives
    return float(np.sqrt((samples + 1) / (12 * positives * negatives)))


def test_models_and_baselines_score_noise_and_the_report_says_flat(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    workspace = Workspace.resolve(tmp_path / "ws").ensure()
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        store_raw_market(manifest, workspace, "SPY", random_walk_bars(ROWS, 1))
        store_raw_market(manifest, workspace, "VIX", random_walk_bars(ROWS, 2))
    finally:
        manifest.close()
    configs = [load_config(REPO / "configs" / "base.yaml",
                           overrides=[*SETTINGS, f"model.budget={b}"]) for b in BUDGETS]
    for config in configs:
        train_run(config, workspace)
    score_and_log_baselines(configs[0], workspace)
    frame = load_results(workspace, EXPERIMENT).frame
    assert sorted(frame[frame["model"] == "patchtst"]["budget"]) == sorted(BUDGETS)
    assert (frame["model"].str.startswith("baseline-")).sum() >= 4
    for _, row in frame.iterrows():
        se = _null_se(row["test_positives"], row["test_samples"])
        assert abs(row["test_auc"] - 0.5) < NOISE_SIGMAS * se, (row["model"], row["budget"])
    published = publish_report(workspace, ReportSource(
        name="random-walk", experiment=EXPERIMENT, phase="rw",
        evaluation=configs[0].evaluation), baselines=False)
    markdown = (published.folder / "report.md").read_text(encoding="utf-8")
    for label in ("test log loss", "1 - test AUC", "1 - test skill"):
        outcomes = set(re.findall(rf", {label} scales as [^:]+: ([^.]+)\.", markdown))
        assert outcomes == {"no trend with size is supported (flat)"}, (label, outcomes)
