"""What joining the VIX one session late (``features.vix_lag_sessions`` 1 vs 0) does to test
AUC on SPY H1: the VIX closes at 16:15, SPY at 16:00, so lag 0 reads 15 minutes of future.

For each lag, the same config (``configs/experiments/cpu_demo.yaml`` + the VIX block) builds
its dataset from the mirror and runs the library's baselines on it (``run_baselines``:
VIX level as a score, logistic regression on the last row plus lags 1, 2, 5, gradient
boosting), every choice made on validation, test scored once. With ``--train`` each lag
also trains the config's 100k PatchTST via ``train_run`` and reads its test AUC from
MLflow. Both lags score the same test samples: the paired bootstrap of the AUC difference
(whole days in blocks of H + 40, ``evaluation.bootstrap``) refuses different sample hashes.

    .venv/bin/python benchmarks/vix_lag_auc.py [--mirror DIR] [--workspace DIR] [--train]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from finscale.config import AppConfig, load_config
from finscale.data.refresh import refresh_universe
from finscale.data.sources.csv_mirror import CsvMirrorSource
from finscale.datasets.build import build_dataset, open_splits
from finscale.evaluation.baselines import run_baselines
from finscale.evaluation.bootstrap import (
    Comparison,
    DayBlockResampler,
    block_days,
    paired_comparison,
)
from finscale.evaluation.config import BootstrapConfig
from finscale.evaluation.metrics import roc_auc
from finscale.evaluation.scored import BASELINE_PREFIX, ScoredTask
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "experiments" / "cpu_demo.yaml"
LAGS = (0, 1)
BASELINES = ("vix_level", "logistic", "hgb")


def lag_config(lag: int, home: Path) -> AppConfig:
    return load_config(CONFIG, overrides=[f"features.vix_lag_sessions={lag}",
                                          "dataset.include_vix=true",
                                          f"workspace.home={home}"])


def baseline_scores(config: AppConfig, manifest: Manifest, workspace: Workspace
                    ) -> dict[tuple[str, str], ScoredTask]:
    """Each baseline's test scores per (baseline, task)."""
    record = build_dataset(manifest, workspace, config)
    splits = open_splits(manifest, record)
    run = run_baselines(splits, config.evaluation.baselines)
    scores = {}
    for result in run.results:
        name = result.name.removeprefix(BASELINE_PREFIX)
        if name in BASELINES and result.test is not None:
            scores[(name, result.task)] = result.test
    return scores


def lag_effect(lag0: ScoredTask, lag1: ScoredTask, horizon: int, boot: BootstrapConfig
               ) -> Comparison:
    """AUC(lag 1) - AUC(lag 0) on the same test samples, with a paired day-block bootstrap."""
    resampler = DayBlockResampler(lag1.end_dates, block=block_days(horizon,
                                  boot.block_margin_days), horizon=horizon)
    return paired_comparison(roc_auc, "auc", lag1, lag0, resampler,
                             replicates=boot.replicates, level=boot.level, seed=boot.seed)


def patchtst_aucs(config: AppConfig, workspace: Workspace, tasks: tuple[str, ...]
                  ) -> dict[str, float]:
    """Train the config's run and read its per-task test AUC from MLflow."""
    from finscale.tracking import TrackingTarget, get_run_record
    from finscale.training.run import train_run

    result = train_run(config, workspace, retrain=True)
    target = TrackingTarget.for_workspace(workspace, config.tracking.experiment,
                                          config.tracking.uri)
    metrics = get_run_record(target, result.run_id).metrics
    return {task: metrics.get(f"test_auc_{task}", float("nan")) for task in tasks} | {
        "mean": metrics.get("test_auc", float("nan"))}


def print_baselines(home: Path, manifest: Manifest, workspace: Workspace, config: AppConfig
                    ) -> tuple[str, ...]:
    """The baselines' test AUC at both lags with the paired difference; the task names."""
    scores = {lag: baseline_scores(lag_config(lag, home), manifest, workspace) for lag in LAGS}
    print(f"{'baseline':<10} {'task':<12} {'pos/n':>10} {'lag 0':>7} {'lag 1':>7} "
          f"{'lag1-lag0 [95% CI]':>26} {'p':>6}")
    for (name, task), lag1 in scores[1].items():
        lag0 = scores[0][(name, task)]
        effect = lag_effect(lag0, lag1, config.dataset.horizon, config.evaluation.bootstrap)
        d = effect.difference
        print(f"{name:<10} {task:<12} {int(lag1.labels.sum()):>4}/{len(lag1.labels):<5} "
              f"{roc_auc(lag0.labels, lag0.scores):7.4f} {roc_auc(lag1.labels, lag1.scores):7.4f} "
              f"{d.estimate:+8.4f} [{d.low:+.4f}, {d.high:+.4f}] {effect.p_value:6.3f}")
    return tuple(dict.fromkeys(task for _, task in scores[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path,
                        default=Path(os.environ.get("FINSCALE_DATA_MIRROR",
                                                    REPO.parent / "shared" / "data")))
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument("--train", action="store_true", help="also train one PatchTST per lag")
    parser.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    args = parser.parse_args()
    home = args.workspace or Path(tempfile.mkdtemp(prefix="vix-lag-"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"{platform.system()}; date {time.strftime('%Y-%m-%d')}; workspace {home}")
    workspace = Workspace.resolve(home).ensure()
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        config = lag_config(1, home)
        mirror = CsvMirrorSource(args.mirror)
        refresh_universe(manifest, workspace, config.data, market_source=mirror,
                         macro_source=mirror, tickers=["SPY", "VIX"])
        tasks: tuple[str, ...] = ()
        if not args.no_baselines:
            tasks = print_baselines(home, manifest, workspace, config)
        if args.train:
            tasks = tasks or tuple(build_dataset(manifest, workspace, config).meta["tasks"])
            models = {lag: patchtst_aucs(lag_config(lag, home), workspace, tasks) for lag in LAGS}
            for key in (*tasks, "mean"):
                a, b = models[0][key], models[1][key]
                print(f"{'patchtst':<10} {key:<14} {a:7.4f} {b:7.4f} {b - a:+7.4f}")
    finally:
        manifest.close()


if __name__ == "__main__":
    main()
