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

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from demo_runs import demo_config, demo_run_parser, refresh, spread, start  # sys.path[0]

from finscale.config import AppConfig
from finscale.models.patchtst import INSTANCE_NORMS
from finscale.tracking import TrackingTarget, get_run_record
from finscale.training.metrics import NO_TASKS
from finscale.training.run import train_run
from finscale.workspace import Workspace

EXPERIMENT = "bench-instance-norm"
TEST_AUC = "test_auc"
REFERENCE = "revin"


def run_config(mode: str, seed: int, epochs: int | None) -> AppConfig:
    # fp32 everywhere: the demo's cpu_autocast auto would pick bf16 on some CPUs only, and
    # this table compares normalisations, not precisions
    return demo_config(EXPERIMENT, seed, epochs, f"model.instance_norm={mode}",
                       "training.cpu_autocast=false")


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


def table(results: dict[str, list[Score]]) -> str:
    """Markdown: one row per mode; each task, the mean over all tasks, the runs' own mean."""
    tasks = list(next(iter(results.values()))[0].per_task)
    lines = ["| instance_norm | " + " | ".join(tasks) + " | mean over tasks | test_auc |",
             "| --- |" + " --- |" * (len(tasks) + 2)]
    for mode, runs in results.items():
        cells = [spread([run.per_task[t] for run in runs]) for t in tasks]
        over_tasks = [statistics.mean(run.per_task.values()) for run in runs]  # one per seed
        selected = spread([run.selected_mean for run in runs])
        lines.append(f"| {mode} | " + " | ".join(cells)
                     + f" | **{spread(over_tasks)}** | {selected} |")
    first = next(iter(results.values()))[0]
    lines.append(f"\nleft out of test_auc (few val counts): {first.excluded}; "
                 f"thin on test: {first.thin_test}")
    return "\n".join(lines)


def main() -> None:
    parser = demo_run_parser(__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="workspace to use and keep (default: a temp)")
    args = parser.parse_args()
    demo = run_config(REFERENCE, args.seeds[0], args.epochs)
    start(args, demo)
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
