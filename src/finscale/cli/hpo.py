"""`finscale hpo run|status|best`: Optuna studies over the trainer (in-process).

STUDY is a study name or the HPO file that names it. optuna, torch and mlflow are imported
inside the verbs, so ``finscale --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from finscale.workspace import Workspace

if TYPE_CHECKING:
    from finscale.hpo.study import BestParams, StudyStatus, TrialOutcome

EXIT_STOPPED = 1  # trials kept failing
EXIT_REFUSED = 2  # bad file, storage or study name
EXIT_THERMAL = 4  # the host got too hot: run again later to continue
EXIT_INTERRUPTED = 130


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``finscale hpo run|status|best``."""
    parser = sub.add_parser("hpo", help="hyperparameter search (Optuna) over training runs")
    verbs = parser.add_subparsers(dest="hpo_command", required=True)
    run = verbs.add_parser("run", help="run (or continue) the study of an HPO file")
    run.add_argument("hpo_file", metavar="CONFIG", help="HPO file, e.g. configs/hpo/demo.yaml")
    run.add_argument("--trials", type=int, help="trials the study should hold in total "
                     "(default: study.n_trials of the file)")
    run.add_argument("--timeout", type=float, metavar="S", help="start no trial after S s")
    run.add_argument("--worker", type=int, default=0, help="this worker's number when "
                     "several run the study at once (their samplers then draw differently)")
    _storage_option(run)
    run.set_defaults(func=run_hpo)
    for verb, func, text in (("status", show_status, "trials by state, best value, elapsed"),
                             ("best", show_best, "best parameters and the final-run command")):
        parser_v = verbs.add_parser(verb, help=text)
        parser_v.add_argument("study", metavar="STUDY", help="study name or HPO file")
        _storage_option(parser_v)
        parser_v.set_defaults(func=func)


def _storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL", help="Optuna storage (default: the "
                        "file's study.storage, else sqlite:///<workspace>/optuna.db)")


def _workspace(args: argparse.Namespace, hpo_file: str | None) -> Workspace:
    """--home, else the cell config's workspace.home (when an HPO file is given)."""
    if hpo_file is not None and hpo_file.endswith((".yaml", ".yml")):
        from finscale.hpo.space import load_spec

        cell = load_spec(hpo_file).cell_config().workspace
        return Workspace.resolve(args.home or cell.home, manifest_url=cell.manifest_url)
    return Workspace.resolve(args.home)


def _print_trial(outcome: TrialOutcome) -> None:
    trial = outcome.trial
    value = "" if trial["value"] is None else f" value {trial['value']:.4f}"
    seconds = f" {trial['seconds']:.1f} s" if trial["seconds"] is not None else ""
    reason = f" ({trial['reason'][:120]})" if trial["reason"] else ""
    print(f"trial {trial['number']:>3} {trial['state']:<8}{value}{reason}{seconds}; "
          f"{outcome.remaining} to go", flush=True)


def run_hpo(args: argparse.Namespace) -> int:
    """Run trials until the study holds --trials; print each and the best."""
    import optuna

    from finscale.hpo.space import load_spec
    from finscale.hpo.storage import StorageURLError
    from finscale.hpo.study import STOP_FAILURES, STOP_THERMAL, run_study

    if not args.verbose:  # one line per trial is printed below; Optuna's own would repeat it
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(args.hpo_file)
    workspace = _workspace(args, args.hpo_file).ensure()
    print(f"study        {spec.study_name()}", flush=True)
    try:
        report = run_study(spec, workspace, n_trials=args.trials, timeout_s=args.timeout,
                           storage=args.storage, worker=args.worker, on_trial=_print_trial)
    except StorageURLError as exc:
        print(f"hpo refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("interrupted: the study is consistent (the running trial is recorded failed "
              "and queued again); run the same command to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"ran          {len(report.trials)} trials; {report.remaining} still to run")
    print(f"mlflow       parent run {report.parent_run_id}")
    _print_best(report.best)
    if report.stop == STOP_THERMAL:
        print("stopped: the thermal guard stopped a trial (queued again); run the same "
              "command when the host is cool", file=sys.stderr)
        return EXIT_THERMAL
    if report.stop == STOP_FAILURES:
        print("stopped: trials kept failing; see `finscale hpo status`", file=sys.stderr)
        return EXIT_STOPPED
    return 0


def _print_best(best: BestParams | None) -> None:
    if best is None:
        print("best         none yet (no complete, non-collapsed trial)")
        return
    print(f"best         trial {best.trial}: {best.metric} {best.value:.4f}")
    for name, value in best.params.items():
        print(f"  {name:<28} {value}")


def _load(args: argparse.Namespace) -> Any:
    from finscale.hpo.study import load_study, resolve_study

    name, url = resolve_study(args.study, _workspace(args, args.study), args.storage)
    return load_study(name, url)


def show_status(args: argparse.Namespace) -> int:
    """Trials by state and reason, best value, elapsed."""
    from finscale.hpo.study import StudyNotFoundError, study_status

    try:
        status: StudyStatus = study_status(_load(args))
    except StudyNotFoundError as exc:
        print(f"hpo refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"study        {status.study}")
    print(f"metric       {status.metric}")
    print("trials       " + (", ".join(f"{n} {state}" for state, n in sorted(
        status.states.items())) or "none"))
    for reason, n in sorted(status.reasons.items()):
        print(f"  {n:>3} x {reason}")
    elapsed = "-" if status.elapsed_s is None else f"{status.elapsed_s:.0f} s"
    print(f"elapsed      {elapsed} (trials together {status.trial_seconds:.0f} s)")
    _print_best(status.best)
    return 0


def show_best(args: argparse.Namespace) -> int:
    """The best parameters as YAML, and the command of the final run that applies them."""
    from finscale.hpo.study import StudyNotFoundError, load_best

    try:
        best = load_best(args.study, _workspace(args, args.study), args.storage)
    except StudyNotFoundError as exc:
        print(f"hpo refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(best.to_yaml(), end="")
    print(f"# final run (test split scored once): finscale train --from-study '{best.study}'")
    return 0


def study_overrides(args: argparse.Namespace, overrides: list[str]) -> list[str] | None:
    """For ``finscale train --from-study STUDY``: the best trial's overrides before the
    command's own; without ``--config`` also the study's cell config and its overrides.
    None (after printing why) when the study has no usable trial."""
    from finscale.hpo.study import StudyNotFoundError, load_best

    try:
        best = load_best(args.from_study, _workspace(args, args.from_study),
                         args.study_storage)
    except StudyNotFoundError as exc:
        print(f"train refused: {exc}", file=sys.stderr)
        return None
    print(f"from study   {best.study}: trial {best.trial} ({best.metric} {best.value:.4f})")
    if args.config:
        return [*best.overrides, *overrides]
    args.config = [best.config_path]
    return [*best.base_overrides, *best.overrides, *overrides]
