"""`finscale demo`: from an empty workspace to a scaling report in one command.

The stages are the verbs a researcher would type, run in this process one after another:
refresh the data (Yahoo and FRED online, or the CSV mirror when $FINSCALE_DATA_MIRROR is
set), build the a20 tier for SPY, run the demo matrix (a short pruned HPO study, then five
budgets x two seeds), then the report (baselines on the same samples, fits, plots), all
tracked in MLflow. On a terminal a progress bar counts the stages with elapsed time above
each verb's own output; elsewhere one plain line per stage. It ends with the report's path
and how to open the MLflow UI and the Prefect UI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from finscale.cli.common import build_context

MIRROR_ENV = "FINSCALE_DATA_MIRROR"  # the data config's name for it (checked by a test)
DEMO_MATRIX = "configs/experiments/demo.yaml"
EXIT_STAGE_FAILED = 1
EXIT_OFFLINE = 2


@dataclass(frozen=True)
class Stage:
    """One verb of the demo: its title and the ``finscale`` arguments that run it."""

    title: str
    argv: tuple[str, ...]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``finscale demo``."""
    parser = sub.add_parser(
        "demo", help="data -> features -> HPO + five budgets -> report, with progress",
        description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", default=DEMO_MATRIX, help="experiment matrix to run")
    parser.set_defaults(func=run_demo)


def demo_stages(matrix: str, mirror: str | None) -> list[Stage]:
    """The verbs, in order; the data stage reads the mirror when one is named."""
    source = ("--source", "csv", "--mirror", mirror) if mirror else ("--source", "online")
    return [
        Stage("data refresh", ("data", "refresh", *source)),
        Stage("features a20 SPY", ("features", "build", "--tier", "a20", "--tickers", "SPY")),
        Stage("experiment (HPO, then final runs)", ("experiment", "run", matrix, "--local")),
        Stage("report (baselines, fits, plots)", ("report", matrix)),
    ]


def _global_args(args: argparse.Namespace) -> list[str]:
    """The global options this demo was started with, passed on to every stage."""
    out = [f"--home={args.home}"] if args.home else []
    out += [f"--config={c}" for c in args.config or []]
    out += [f"--set={s}" for s in args.set or []]
    return out


@contextmanager
def _display(stages: Sequence[Stage]) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal (verb output printed above it); plain lines
    otherwise. Yields ``advance(index)`` to call as each stage starts."""
    if not sys.stdout.isatty():
        started = time.perf_counter()

        def line(index: int) -> None:
            print(f"[{index + 1}/{len(stages)}] {stages[index].title} "
                  f"({time.perf_counter() - started:.0f} s so far)", flush=True)

        yield line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, redirect_stdout=True, redirect_stderr=True) as progress:
        task = progress.add_task("demo", total=len(stages))

        def advance(index: int) -> None:
            progress.update(task, completed=index, description=stages[index].title)

        yield advance
        progress.update(task, completed=len(stages), description="done")


def _offline_line(mirror: str | None) -> str:
    if mirror:
        return f"demo: the mirror {mirror} ({MIRROR_ENV}) could not be read; see above"
    return (f"demo: Yahoo Finance or FRED is unreachable (or FRED_API_KEY is unset); to run "
            f"offline set {MIRROR_ENV}=/path/to/csvs (a folder of market/ and fred/ CSVs, "
            "e.g. ../shared/data) and run `make demo` again")


def run_demo(args: argparse.Namespace) -> int:
    """Run every stage; stop at the first that fails, naming it."""
    from finscale.cli.main import main

    mirror = os.environ.get(MIRROR_ENV) or None
    stages = demo_stages(args.matrix, mirror)
    started = time.perf_counter()
    with _display(stages) as advance:
        for index, stage in enumerate(stages):
            advance(index)
            code = main([*_global_args(args), *stage.argv])
            if code != 0:
                if index == 0 and code == EXIT_OFFLINE:
                    print(_offline_line(mirror), file=sys.stderr)
                    return EXIT_OFFLINE
                print(f"demo: stage '{stage.title}' failed (exit {code}): "
                      f"finscale {' '.join(stage.argv)}", file=sys.stderr)
                return EXIT_STAGE_FAILED
    _print_next_steps(args, time.perf_counter() - started)
    return 0


def _print_next_steps(args: argparse.Namespace, seconds: float) -> None:
    workspace = build_context(args).workspace
    reports = sorted(workspace.reports_dir.glob("*/index.html"), key=lambda p: p.stat().st_mtime)
    print(f"\ndemo finished in {seconds / 60:.1f} min")
    print(f"report       {reports[-1] if reports else workspace.reports_dir}")
    print("MLflow UI    make mlflow-ui   then open http://127.0.0.1:5000 "
          "(Experiments -> the run's experiment -> Training runs)")
    print("Prefect UI   make stack       then open http://127.0.0.1:4200 "
          "(deployments, work pools, flow runs; make stop ends it)")
