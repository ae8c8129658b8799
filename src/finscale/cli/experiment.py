"""`finscale experiment plan|status|run`: a whole phase of the study as one command."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from finscale.cli.common import build_context, print_table

if TYPE_CHECKING:
    from finscale.config.schema import AppConfig
    from finscale.experiments.matrix import Job, Matrix
    from finscale.experiments.plan import MatrixPlan, PlanInputs, Totals
    from finscale.workspace import Workspace

DEFAULT_PROFILES = Path("configs/devices.yaml")
DEFAULT_JOB_OVERHEAD_S = 5.0  # this machine, measured: dataset open, MLflow run, logging
DEFAULT_GATE_TIMEOUT_S = 3600.0
EXIT_FAILED = 1
BAR_WIDTH = 30
DEPLOYMENT = "experiment/experiment"
PREFECT_CLI_TIMEOUT_S = 120.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `experiment plan`, `experiment status` and `experiment run`."""
    experiment = sub.add_parser("experiment", help="plan, run and follow an experiment matrix")
    commands = experiment.add_subparsers(dest="experiment_command", required=True)
    plan = commands.add_parser("plan", help="every job with its identity, counts, estimated "
                               "time and the saving against the naive plan")
    plan.add_argument("matrices", nargs="+", metavar="CONFIG", help="matrix files, in order")
    _estimate_options(plan)
    plan.add_argument("--totals-only", action="store_true", help="no per-job rows")
    plan.set_defaults(func=run_plan)
    status = commands.add_parser("status", help="per job: pending / running / done / failed / "
                                 "collapsed / thermal-stopped, MLflow links, elapsed vs estimate")
    status.add_argument("matrix", metavar="CONFIG")
    _estimate_options(status)
    status.set_defaults(func=run_status)
    run = commands.add_parser("run", help="run what is not finished: studies, then final runs")
    run.add_argument("matrix", metavar="CONFIG")
    run.add_argument("--local", action="store_true",
                     help="run the jobs in this process (CPU hosts, tests); default: start the "
                     "Prefect deployment `experiment`, which submits them to the work pool")
    run.add_argument("--gate-timeout", type=float, default=DEFAULT_GATE_TIMEOUT_S, metavar="S",
                     help="seconds the thermal gate waits for a cool host before a job")
    run.set_defaults(func=run_run)


def _estimate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device-profile", metavar="NAME",
                        help="estimate from FLOPs on a named device (configs/devices.yaml); "
                        "default: measure this machine with a short probe per shape")
    parser.add_argument("--profiles", type=Path, default=DEFAULT_PROFILES,
                        help="device profiles file")
    parser.add_argument("--job-overhead", type=float, default=DEFAULT_JOB_OVERHEAD_S,
                        metavar="S", help="seconds per job besides training, measured mode")


def _load(paths: Sequence[str]) -> list[Matrix]:
    from finscale.experiments.matrix import load_matrix

    return [load_matrix(path) for path in paths]


def _study_config(job: Job) -> AppConfig:
    """The study's trial config when its HPO file is there, else the cell's (stated)."""
    from finscale.experiments.hpo_adapter import study_config

    if job.hpo_config is not None and Path(job.hpo_config).is_file():
        return study_config(job)
    return job.config


def plan_inputs(args: argparse.Namespace, matrices: Sequence[Matrix], workspace: Workspace
                ) -> tuple[PlanInputs, str]:
    """Throughput from a device profile or from probes here; a line saying which."""
    from finscale.experiments.plan import PlanInputs
    from finscale.experiments.shapes import ShapeCache, stored_spans
    from finscale.experiments.throughput import MeasuredRates, device_label, load_profiles
    from finscale.training.device import resolve_device

    tickers = {t for m in matrices for j in m.final_jobs
               for t in (j.config.dataset.pooled_tickers or (j.config.dataset.ticker,))}
    spans = stored_spans(workspace, tickers)
    if args.device_profile:
        profiles = load_profiles(args.profiles)
        if args.device_profile not in profiles:
            from finscale.config.errors import ConfigError

            raise ConfigError(str(args.profiles), args.device_profile,
                              f"no such profile; known: {', '.join(profiles)}")
        profile, name = profiles[args.device_profile], args.device_profile
        inputs = PlanInputs(rates=lambda shapes: {s.key: profile.throughput(s, name)
                                                  for s in shapes},
                            overhead_s=profile.job_overhead_s, study_config=_study_config,
                            spans=spans, shape_cache=ShapeCache(workspace.cache_dir))
        return inputs, (f"device profile {name}: {profile.description}; "
                        f"{profile.peak_tflops:g} TFLOP/s peak x MFU {profile.mfu:.2f}, "
                        f"+{profile.step_overhead_s:g} s/step, +{profile.job_overhead_s:g} s/job")
    training = matrices[0].final_jobs[0].config.training  # probe as the jobs will train
    device = resolve_device(training.device, cpu_autocast=training.cpu_autocast)
    rates = MeasuredRates(device, workspace.cache_dir)
    inputs = PlanInputs(rates=rates.throughputs, overhead_s=args.job_overhead,
                        study_config=_study_config, spans=spans,
                        shape_cache=ShapeCache(workspace.cache_dir))
    return inputs, (f"measured here: {device_label(device)} (timed probe per shape, cached in "
                    f"{rates.path}; larger shapes extrapolated from FLOPs), "
                    f"+{args.job_overhead:g} s/job")


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _print_jobs(plan: MatrixPlan, study_names: dict[str, str]) -> None:
    rows: list[list[object]] = []
    for estimate in (*plan.studies, *plan.finals):
        job = estimate.job
        shared = " (counted above)" if job.id in plan.shared_studies else ""
        identity = study_names.get(job.id, job.identity)
        rows.append([job.id, f"{estimate.shape.n_parameters:,}", estimate.throughput.source,
                     _human(estimate.seconds) + shared, identity])
    print_table(["job", "parameters", "throughput", "estimate", "identity"], rows)


def _print_totals(label: str, totals: Totals) -> None:
    saving = totals.naive_one_seed_s - totals.one_seed_s
    share = saving / totals.naive_one_seed_s if totals.naive_one_seed_s else 0.0
    print(f"{label}: {totals.studies} studies + {totals.finals_one_seed} final runs (one seed "
          f"per final cell) = {_human(totals.one_seed_s)}; with the configured seeds "
          f"{totals.finals} final runs = {_human(totals.total_s)}")
    print(f"  naive plan (no pruning, no HPO reuse: {totals.naive_studies} studies, one per "
          f"final cell): {_human(totals.naive_one_seed_s)} one seed per cell, "
          f"{_human(totals.naive_s)} with the configured seeds")
    print(f"  saving against the naive plan: {_human(saving)} ({share:.0%}, one seed per cell)")


def _study_names(matrices: Sequence[Matrix]) -> dict[str, str]:
    """The study names of studies whose HPO file is there (else their planned identity)."""
    from finscale.experiments.hpo_adapter import study_spec

    return {sid: study_spec(job).study_name() for m in matrices
            for sid, job in m.studies().items()
            if job.hpo_config is not None and Path(job.hpo_config).is_file()}


def run_plan(args: argparse.Namespace) -> int:
    """Print every job with its identity and estimate, then the totals."""
    from finscale.experiments.plan import hours, plan_matrices

    matrices = _load(args.matrices)
    context = build_context(args)
    inputs, source = plan_inputs(args, matrices, context.workspace)
    plans = plan_matrices(matrices, inputs)
    names = {} if args.totals_only else _study_names(matrices)
    print(f"estimate: {source}")
    print("final runs are shown with their identity before their study's best parameters "
          "(those enter the settings hash when applied)\n")
    for plan in plans:
        spec = plan.matrix.spec
        print(f"matrix {spec.name} (phase {spec.phase}): {spec.description}")
        if not args.totals_only:
            _print_jobs(plan, names)
        _print_totals(f"  {spec.name}", plan.totals)
        print()
    if len(plans) > 1:
        total = plans[0].totals
        for plan in plans[1:]:
            total = total + plan.totals
        _print_totals("all matrices", total)
        print(f"  ({hours(total.one_seed_s):,.1f} h one seed per cell; "
              f"{hours(total.total_s):,.1f} h with the configured seeds)")
    return 0


def _estimates(args: argparse.Namespace, matrix: Matrix, workspace: Workspace
               ) -> dict[str, float]:
    from finscale.experiments.plan import plan_matrices

    inputs, _ = plan_inputs(args, [matrix], workspace)
    plan = plan_matrices([matrix], inputs)[0]
    return {e.job.id: e.seconds for e in (*plan.studies, *plan.finals)}


def run_status(args: argparse.Namespace) -> int:
    """One row per job: state, elapsed vs estimate, detail, MLflow link."""
    from collections import Counter

    from finscale.experiments.status import matrix_status, tracking_target
    from finscale.tracking import get_run_record

    matrix = _load([args.matrix])[0]
    workspace = build_context(args).workspace
    statuses = matrix_status(matrix, workspace)
    estimates = _estimates(args, matrix, workspace)
    target = tracking_target(matrix, workspace)
    rows: list[list[object]] = []
    for status in statuses:
        link = ""
        if status.run_id is not None:
            experiment = status.experiment_id or get_run_record(target,
                                                                status.run_id).experiment_id
            link = target.run_url(experiment, status.run_id)
        elapsed = _human(status.elapsed_s) if status.elapsed_s is not None else "-"
        rows.append([status.job.id, status.state, elapsed, _human(estimates[status.job.id]),
                     status.detail, link])
    print_table(["job", "state", "elapsed", "estimate", "detail", "mlflow"], rows)
    counts = Counter(status.state for status in statuses)
    print("\n" + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    print(f"mlflow ui: {target.ui_hint()}")
    return 0


def _progress_printer(total: int) -> Callable[[str, Job, str], None]:
    """A text progress bar: one line per job event, the bar counting ended jobs."""
    ended = [0]

    def show(event: str, job: Job, detail: str) -> None:
        if event != "start":
            ended[0] += 1
        filled = BAR_WIDTH * ended[0] // max(total, 1)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        print(f"[{bar}] {ended[0]}/{total} {event:<7} {job.id}: {detail}", flush=True)

    return show


def _to_run(matrix: Matrix, workspace: Workspace) -> int:
    """Jobs a run would start now: unfinished studies and unfinished final jobs."""
    from finscale.experiments.status import matrix_status

    return sum(1 for s in matrix_status(matrix, workspace) if not s.finished)


def run_run(args: argparse.Namespace) -> int:
    """--local: run in this process with a progress bar; else start the Prefect flow."""
    if not args.local:
        return _start_deployment(args)
    from finscale.experiments.run import LocalRunner, run_matrix

    matrix = _load([args.matrix])[0]
    workspace = build_context(args).workspace
    progress = _progress_printer(_to_run(matrix, workspace))
    report = run_matrix(matrix, workspace, LocalRunner(workspace, args.gate_timeout), progress)
    print(f"started {len(report.started)} jobs, skipped {len(report.skipped)} finished, "
          f"{len(report.waiting)} waiting for a study, {len(report.thermal)} thermal-stopped, "
          f"{len(report.failed)} failed; {_human(report.seconds)}")
    for job_id, reason in report.failed:
        print(f"failed {job_id}: {reason}", file=sys.stderr)
    return EXIT_FAILED if report.failed else 0


def _start_deployment(args: argparse.Namespace) -> int:
    """Start the `experiment` deployment through the Prefect CLI (the library never imports
    Prefect); the flow then submits each job to the `finscale-gpu` pool."""
    command = ["prefect", "deployment", "run", DEPLOYMENT, "--param",
               f"config_path={args.matrix}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=PREFECT_CLI_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"could not start {DEPLOYMENT}: {exc}; use --local to run here",
              file=sys.stderr)
        return EXIT_FAILED
    print(done.stdout + done.stderr, end="")
    return 0 if done.returncode == 0 else EXIT_FAILED
