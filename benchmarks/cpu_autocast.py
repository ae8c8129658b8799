"""Benchmark: ``training.cpu_autocast`` (bf16 on CPU) against fp32, in time and in AUC.

Trains the CPU demo run (configs/experiments/cpu_demo.yaml: SPY, tier a20, horizon 1, budget
100k) once per precision and seed in a temporary workspace filled from the csv mirror, and
prints per run the wall time and the training samples/s of its last epoch, and over the seeds
(mean ± sample std) the best-checkpoint validation AUC and the test AUC as MLflow recorded
them. Reference: fp32 (``training.cpu_autocast: false``, the default). bf16 pays only on CPUs
with native bf16 (AVX512-BF16, AMX); the script prints whether this one has it.

Usage: nice -n 10 .venv/bin/python benchmarks/cpu_autocast.py [--seeds 0 1 2] [--epochs N]
       [--mirror DIR] [--threads N]
"""

from __future__ import annotations

import statistics
import tempfile
import time

from demo_runs import demo_config, demo_run_parser, refresh, spread, start  # sys.path[0]

from finscale.config import AppConfig
from finscale.tracking import TrackingTarget, get_run_record
from finscale.training.run import train_run
from finscale.workspace import Workspace

EXPERIMENT = "bench-cpu-autocast"
PRECISIONS = {"fp32": False, "bf16": True}


def run_config(bf16: bool, seed: int, epochs: int | None) -> AppConfig:
    return demo_config(EXPERIMENT, seed, epochs, f"training.cpu_autocast={str(bf16).lower()}",
                       "training.compile=false")


def one_run(workspace: Workspace, name: str, seed: int, epochs: int | None) -> dict[str, float]:
    """Train one run; wall time, last epoch's samples/s, val and test AUC from MLflow."""
    started = time.perf_counter()
    result = train_run(run_config(PRECISIONS[name], seed, epochs), workspace)
    seconds = time.perf_counter() - started
    record = get_run_record(TrackingTarget.for_workspace(workspace, EXPERIMENT), result.run_id)
    row = {"seconds": seconds, "samples_per_s": record.metrics["samples_per_s"],
           "val_auc": record.metrics["best_val_auc"], "test_auc": record.metrics["test_auc"]}
    print(f"  {name} seed {seed}: {seconds:5.0f} s, {row['samples_per_s']:7.0f} samples/s, "
          f"stop {result.stop_reason}, val_auc {row['val_auc']:.4f}, "
          f"test_auc {row['test_auc']:.4f}", flush=True)
    return row


def main() -> None:
    args = demo_run_parser(__doc__.splitlines()[0]).parse_args()
    demo = run_config(False, args.seeds[0], args.epochs)
    start(args, demo)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in PRECISIONS}
    with tempfile.TemporaryDirectory(prefix="finscale-bench-") as tmp:
        workspace = Workspace.resolve(tmp).ensure()
        refresh(demo, workspace, args.mirror)
        for seed in args.seeds:  # fp32 and bf16 alternate: load drifts hit both
            for name in PRECISIONS:
                rows[name].append(one_run(workspace, name, seed, args.epochs))
    print("\n| precision | samples/s | run time s | val AUC | test AUC |\n| --- | --- | --- | --- "
          "| --- |")
    for name, runs in rows.items():
        print(f"| {name} | {spread([r['samples_per_s'] for r in runs], 0)} | "
              f"{spread([r['seconds'] for r in runs], 0)} | "
              f"{spread([r['val_auc'] for r in runs])} | "
              f"{spread([r['test_auc'] for r in runs])} |")
    ratio = (statistics.median(r["samples_per_s"] for r in rows["bf16"])
             / statistics.median(r["samples_per_s"] for r in rows["fp32"]))
    print(f"\nratio bf16 / fp32 training samples/s (medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
