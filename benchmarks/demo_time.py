"""Benchmark: how long the demo takes here, and how good the plan's estimate of its matrix is.

Runs the stages of `finscale demo` (the same list, ``finscale.cli.demo.demo_stages``) one by
one in a fresh workspace, each as its own ``finscale`` process, and times each. Before the
experiment stage it computes the plan's estimate for the matrix exactly as
``finscale experiment plan`` does here (timed probe per shape, default job overhead), so
the experiment stage's wall time can be set against it. Goals: the estimate within a factor
of 2 of the measured time (issue 10), and the whole demo, with the venv set-up that
`make demo` adds on a fresh clone, under 10 minutes on 2 CPU cores (issue 12).

Usage: .venv/bin/python benchmarks/demo_time.py [--matrix configs/experiments/demo.yaml]
           [--mirror ../shared/data] [--home /tmp/finscale-bench-demo]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from finscale.cli.demo import DEMO_MATRIX, MIRROR_ENV, Stage, demo_stages
from finscale.cli.experiment import DEFAULT_JOB_OVERHEAD_S, DEFAULT_PROFILES, plan_inputs
from finscale.experiments.matrix import load_matrix
from finscale.experiments.plan import plan_matrices
from finscale.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
EXPERIMENT_VERB = "experiment"
GOAL_RATIO = 2.0
GOAL_DEMO_S = 600.0


def run_stage(stage: Stage, home: Path) -> float:
    """One stage as `finscale --home HOME ARGS`; its wall seconds (a failure stops here)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "finscale.cli.main", "--home", str(home),
                           *stage.argv], cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"stage '{stage.title}' failed (exit {done.returncode}):\n"
                 f"{done.stderr[-3000:]}")
    return seconds


def estimate_s(matrix_path: str, home: Path) -> float:
    """The plan's total for the matrix, from the probes `experiment plan` runs here."""
    matrix = load_matrix(matrix_path)
    options = argparse.Namespace(device_profile=None, profiles=DEFAULT_PROFILES,
                                 job_overhead=DEFAULT_JOB_OVERHEAD_S)
    inputs, source = plan_inputs(options, [matrix], Workspace.resolve(home))
    print(f"estimate: {source}")
    return float(plan_matrices([matrix], inputs)[0].totals.total_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", default=DEMO_MATRIX)
    parser.add_argument("--mirror", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--home", type=Path, default=Path("/tmp/finscale-bench-demo"))
    args = parser.parse_args()
    shutil.rmtree(args.home, ignore_errors=True)
    os.environ.pop(MIRROR_ENV, None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # the demo's own store, in the workspace
    print(f"{platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, load {os.getloadavg()}")
    times: list[tuple[str, float]] = []
    estimate = 0.0
    for stage in demo_stages(args.matrix, str(args.mirror.resolve())):
        if stage.argv[0] == EXPERIMENT_VERB:
            started = time.perf_counter()
            estimate = estimate_s(args.matrix, args.home)
            times.append(("plan estimate (probes)", time.perf_counter() - started))
            print(f"{times[-1][0]:<40} {times[-1][1]:8.1f} s (not a demo stage)")
        times.append((stage.title, run_stage(stage, args.home)))
        print(f"{times[-1][0]:<40} {times[-1][1]:8.1f} s", flush=True)
    measured = dict(times)[next(s.title for s in demo_stages(args.matrix, None)
                                if s.argv[0] == EXPERIMENT_VERB)]
    demo_s = sum(seconds for title, seconds in times if not title.startswith("plan"))
    ratio = measured / estimate
    print(f"experiment stage: estimated {estimate:.0f} s, measured {measured:.0f} s, "
          f"measured/estimate {ratio:.2f} (goal within {1 / GOAL_RATIO:.1f}..{GOAL_RATIO:.1f}: "
          f"{'met' if 1 / GOAL_RATIO <= ratio <= GOAL_RATIO else 'missed'})")
    print(f"demo stages: {demo_s / 60:.1f} min (goal with the venv set-up: "
          f"{GOAL_DEMO_S / 60:.0f} min); load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
