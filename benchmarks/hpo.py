"""Benchmark: does pruning pay? A pruned study against an unpruned one, same seed and trials.

Both studies use the CPU demo space (configs/hpo/demo.yaml: SPY a20 H1, budgets 30k-300k,
8 epochs max); the reference is the same file with ``pruner: none``. They run in separate
workspaces (so no trial reuses the other study's finished runs) and trial by trial in
alternation (A0 B0 A1 B1 ...), so load on a shared machine falls on both alike. Each study's
time is the sum of its trials' wall times. Goal (issue 9): the pruned best value within
0.01 AUC of the unpruned one, in at most 60% of its time.

Usage: .venv/bin/python benchmarks/hpo.py [--trials 20] [--root /tmp/finscale-bench-hpo]
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
from typing import Any

import torch
import yaml

from finscale.hpo.space import load_spec
from finscale.hpo.study import HpoStudy
from finscale.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "hpo" / "demo.yaml"
DEFAULT_DATA = REPO.parent / "shared" / "data"
GOAL_GAP = 0.01
GOAL_TIME_RATIO = 0.60


def write_variant(root: Path, name: str, pruner: dict[str, Any] | None) -> Path:
    """The demo file with an absolute cell path, its own MLflow store and, optionally,
    another pruner. The store is named because ``mlflow.set_tracking_uri`` exports
    MLFLOW_TRACKING_URI, which training honours: the second study would record (and reuse
    finished runs) in the first one's store."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["config"] = str((DEMO.parent / data["config"]).resolve())
    data["overrides"].append(f"tracking.uri=sqlite:///{root / name / 'mlflow.db'}")
    if pruner is not None:
        data["study"]["pruner"] = pruner
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def prepare_workspace(home: Path, mirror: Path) -> Workspace:
    """A fresh workspace refreshed from the CSV mirror (as `finscale data refresh` does)."""
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "FINSCALE_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "finscale.cli.main", "data", "refresh", "--source",
                    "csv", "--mirror", str(mirror)], check=True, env=env, cwd=REPO,
                   capture_output=True)
    return Workspace.resolve(home).ensure()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--root", type=Path, default=Path("/tmp/finscale-bench-hpo"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.root.mkdir(parents=True, exist_ok=True)
    names = {"pruned": None, "unpruned": {"type": "none"}}
    studies: dict[str, HpoStudy] = {}
    for name, pruner in names.items():
        spec = load_spec(write_variant(args.root, name, pruner))
        workspace = prepare_workspace(args.root / name, args.data)
        studies[name] = HpoStudy.open(spec, workspace)
        studies[name].begin()
    seconds = dict.fromkeys(names, 0.0)
    states: dict[str, list[str]] = {name: [] for name in names}
    for _ in range(args.trials):
        for name, study in studies.items():
            if study.remaining(args.trials) == 0:
                continue
            started = time.perf_counter()
            outcome = study.run_trial(args.trials)
            seconds[name] += time.perf_counter() - started
            states[name].append(outcome.trial["state"])
            print(f"{name:<9} trial {outcome.trial['number']:>2} {outcome.trial['state']:<8} "
                  f"value {outcome.trial['value']} {time.perf_counter() - started:.0f} s",
                  flush=True)
    best = {name: study.finish("FINISHED") for name, study in studies.items()}
    report(args, seconds, states, best)


def report(args: argparse.Namespace, seconds: dict[str, float], states: dict[str, list[str]],
           best: dict[str, Any]) -> None:
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} thread(s), load {os.getloadavg()[0]:.1f}")
    for name in seconds:
        value = best[name].value if best[name] is not None else float("nan")
        counts = {s: states[name].count(s) for s in sorted(set(states[name]))}
        print(f"{name:<9} best val AUC {value:.4f}  time {seconds[name]:.0f} s  {counts}")
    if best["pruned"] is None or best["unpruned"] is None:
        print("no usable trial in one of the studies: no comparison")
        return
    gap = best["unpruned"].value - best["pruned"].value
    ratio = seconds["pruned"] / seconds["unpruned"]
    print(f"AUC gap (unpruned - pruned) {gap:+.4f} (goal <= {GOAL_GAP}): "
          f"{'PASS' if gap <= GOAL_GAP else 'FAIL'}")
    print(f"time ratio pruned/unpruned {ratio:.2f} (goal <= {GOAL_TIME_RATIO}): "
          f"{'PASS' if ratio <= GOAL_TIME_RATIO else 'FAIL'}")


if __name__ == "__main__":
    main()
