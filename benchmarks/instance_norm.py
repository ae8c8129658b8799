"""Benchmark: what RevIN's discarded window level costs: instance_norm none, revin, revin_stats.

RevIN normalises each window per feature and drops the statistics, so the model cannot tell a
calm window from a wild one; the threshold labels are mostly volatility. This trains the CPU
demo run (configs/experiments/cpu_demo.yaml: SPY, tier a20, horizon 1, budget 100k, its epochs)
once per mode and seed, in a temporary workspace filled from the csv mirror, and prints the test
AUC of every task (the best-validation checkpoint, read back from MLflow) as mean ± sample std
over the seeds, and the mean over tasks. Reference: ``revin``, the mode the model had before.

Usage: nice -n 10 .venv/bin/python benchmarks/instance_norm.py [--seeds 0 1 2] [--epochs N]
       [--mirror DIR] [--home DIR (keep the workspace)] [--threads N]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from model_throughput import cpu_model  # benchmarks/ is the script's sys.path[0]

from finscale.config import AppConfig, load_config
from finscale.data.config import MIRROR_ENV
from finscale.data.refresh import RefreshStatus, refresh_universe
from finscale.data.sources import make_macro_source, make_market_source
from finscale.manifest.store import Manifest
from finscale.models.patchtst import INSTANCE_NORMS
from finscale.tracking import TrackingTarget, get_run_record
from finscale.training.metrics import NO_TASKS
from finscale.training.run import train_run
from finscale.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "experiments" / "cpu_demo.yaml"
DEFAULT_MIRROR = REPO.parent / "shared" / "data"
EXPERIMENT = "bench-instance-norm"
TEST_AUC = "test_auc"
REFERENCE = "revin"


def refresh(config: AppConfig, workspace: Workspace, mirror: Path) -> None:
    """The configured universe from the csv mirror (`finscale data refresh --source csv`)."""
    data = config.data.model_copy(update={"source": "csv"})
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        summaries = refresh_universe(
            manifest, workspace, data, market_source=make_market_source(data, mirror),
            macro_source=make_macro_source(data, mirror),
        )
    finally:
        manifest.close()
    failed = [s for s in summaries if s.status == RefreshStatus.FAILED]
    if failed:
        raise SystemExit(f"refresh failed: {[(s.name, s.reason) for s in failed]}")


def run_config(mode: str, seed: int, epochs: int | None) -> AppConfig:
    overrides = [f"model.instance_norm={mode}", f"training.seed={seed}",
                 f"tracking.experiment={EXPERIMENT}", "training.log_model=false"]
    if epochs is not None:
        overrides.append(f"training.epochs={epochs}")
    return load_config(DEMO_CONFIG, overrides=overrides)


@dataclass(frozen=True)
class Score:
    """One run's test AUC per task, its own mean over the validation-selected tasks, and the
    tasks the run left out of that mean (too few val counts) or marked thin on test."""

    per_task: dict[str, float]
    selected_mean: float
    excluded: str
    thin_test: str


def _tasks(tags: dict[str, str]) -> list[str]:
    names = f"{tags['included_tasks']},{tags['excluded_tasks']}".split(",")
    return sorted(name for name in names if name != NO_TASKS)


def score(workspace: Workspace, mode: str, seed: int, epochs: int | None) -> Score:
    """Train one run; its test AUCs as MLflow recorded them (best-validation checkpoint)."""
    started = time.perf_counter()
    result = train_run(run_config(mode, seed, epochs), workspace)
    record = get_run_record(TrackingTarget.for_workspace(workspace, EXPERIMENT), result.run_id)
    per_task = {t: record.metrics[f"{TEST_AUC}_{t}"] for t in _tasks(record.tags)}
    run = Score(per_task, record.metrics[TEST_AUC], record.tags["excluded_tasks"],
                record.tags.get("thin_tasks_test", "?"))
    print(f"  {mode:<12} seed {seed}: {time.perf_counter() - started:4.0f} s, stop "
          f"{result.stop_reason}, best epoch {record.tags.get('best_epoch')}, collapsed "
          f"{result.collapsed}, test_auc {run.selected_mean:.4f}; "
          + ", ".join(f"{t} {v:.4f}" for t, v in per_task.items()), flush=True)
    return run


def _spread(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def table(results: dict[str, list[Score]]) -> str:
    """Markdown: one row per mode; each task, the mean over all tasks, the runs' own mean."""
    tasks = list(next(iter(results.values()))[0].per_task)
    lines = ["| instance_norm | " + " | ".join(tasks) + " | mean over tasks | test_auc |",
             "| --- |" + " --- |" * (len(tasks) + 2)]
    for mode, runs in results.items():
        cells = [_spread([run.per_task[t] for run in runs]) for t in tasks]
        over_tasks = [statistics.mean(run.per_task.values()) for run in runs]  # one per seed
        selected = _spread([run.selected_mean for run in runs])
        lines.append(f"| {mode} | " + " | ".join(cells)
                     + f" | **{_spread(over_tasks)}** | {selected} |")
    first = next(iter(results.values()))[0]
    lines.append(f"\nleft out of test_auc (few val counts): {first.excluded}; "
                 f"thin on test: {first.thin_test}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="default: the demo config's")
    parser.add_argument("--mirror", type=Path,
                        default=Path(os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR))
    parser.add_argument("--home", type=Path, help="workspace to use and keep (default: a temp)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    demo = run_config(REFERENCE, args.seeds[0], args.epochs)
    print(f"date {date.today()}, machine: {os.cpu_count()} CPUs ({cpu_model()}), torch "
          f"{torch.__version__}, {args.threads} thread(s); {demo.dataset.ticker} "
          f"{demo.dataset.tier} H{demo.dataset.horizon}, budget {demo.model.budget}, "
          f"{demo.training.epochs} epochs, seeds {args.seeds}", flush=True)
    with tempfile.TemporaryDirectory(prefix="finscale-bench-") as tmp:
        workspace = Workspace.resolve(args.home or tmp).ensure()
        refresh(demo, workspace, args.mirror)
        results = {mode: [score(workspace, mode, seed, args.epochs) for seed in args.seeds]
                   for mode in INSTANCE_NORMS}
    print(f"\ntest AUC, mean ± sample std over {len(args.seeds)} seeds "
          f"(reference: {REFERENCE})\n")
    print(table(results))


if __name__ == "__main__":
    main()
