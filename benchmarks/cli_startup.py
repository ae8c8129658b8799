"""Benchmark: the wall time of `finscale --help` against a bare interpreter's start-up.

The CLI imports a verb's heavy modules (pandas, SQLAlchemy, pydantic, torch...) only when that
verb runs, so `--help` should cost little more than starting Python. Measured alternately, so
load drifts on a shared machine hit both alike:

- `finscale --help` through the installed console script (what a user types);
- the reference: `python -c pass` with the same interpreter.

It prints the median wall time (and range) in ms, the ratio of the medians and their
difference (what finscale itself adds), and the median CPU time (user + system) of each: on a
loaded machine the wall time includes waiting for a core, the CPU time much less so.
``--src DIR`` times the CLI of another source tree (e.g. an older commit exported with
``git archive``) through PYTHONPATH, for before/after figures.

Usage: python benchmarks/cli_startup.py [--runs N] [--src DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

CONSOLE_SCRIPT = Path(sys.executable).with_name("finscale")
EXPECTED_HELP = "usage: finscale"


def _child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(
    command: Sequence[str], env: dict[str, str], expected: str = ""
) -> tuple[float, float]:
    """(wall s, CPU s) of one run of ``command``; refuses a run that fails or lacks
    ``expected`` on stdout."""
    cpu_before, started = _child_cpu_s(), time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds, cpu = time.perf_counter() - started, _child_cpu_s() - cpu_before
    if result.returncode != 0 or expected not in result.stdout:
        raise SystemExit(f"{' '.join(command)} failed (exit {result.returncode}): "
                         f"{result.stderr.strip()[-500:]}")
    return seconds, cpu


def _target(src: Path | None) -> tuple[list[str], dict[str, str]]:
    """The `finscale --help` command and its environment (PYTHONPATH=src when given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSCALE_")}
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    if CONSOLE_SCRIPT.is_file():
        return [str(CONSOLE_SCRIPT), "--help"], env
    return [sys.executable, "-m", "finscale.cli.main", "--help"], env


def _summary(name: str, runs: list[tuple[float, float]]) -> str:
    wall = [w for w, _ in runs]
    return (f"{name:18s} wall median {statistics.median(wall) * 1000:7.1f} ms "
            f"(range {min(wall) * 1000:.1f}..{max(wall) * 1000:.1f}), "
            f"CPU median {statistics.median(c for _, c in runs) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs of each command")
    parser.add_argument("--src", type=Path, help="source tree whose CLI to time (PYTHONPATH)")
    args = parser.parse_args()
    target, env = _target(args.src)
    reference = [sys.executable, "-c", "pass"]
    load_before = os.getloadavg()[0]
    _timed(target, env, EXPECTED_HELP)  # warms the file cache; checks the command works
    times: dict[str, list[tuple[float, float]]] = {"python -c pass": [], "finscale --help": []}
    for _ in range(args.runs):  # alternately, so load drifts hit both alike
        times["python -c pass"].append(_timed(reference, env))
        times["finscale --help"].append(_timed(target, env, EXPECTED_HELP))
    print(f"nproc {os.cpu_count()}, load {load_before:.2f} -> {os.getloadavg()[0]:.2f}, "
          f"runs {args.runs}, {' '.join(target)}"
          + (f" (PYTHONPATH={env['PYTHONPATH']})" if args.src else ""))
    for name, values in times.items():
        print(_summary(name, values))
    ref, cli = (statistics.median(w for w, _ in runs) for runs in times.values())
    print(f"ratio {cli / ref:.2f}x, finscale adds {(cli - ref) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
