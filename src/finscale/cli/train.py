"""`finscale train`: one training run in-process (the same code the Prefect flow runs)."""

from __future__ import annotations

import argparse
import sys

from finscale.cli.common import build_context

EXIT_REFUSED = 3  # the run refused to start (or stopped) for a reason the message names


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``finscale train [--config F] [--resume] key=value ...``."""
    parser = sub.add_parser(
        "train", help="train one PatchTST run and record it in MLflow",
        description="Train one run. Overrides are key=value (e.g. model.budget=100k).",
    )
    parser.add_argument("--config", dest="train_config", action="append",
                        help="YAML config (repeatable; later wins; same as the global --config)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run key's last checkpoint")
    parser.add_argument("--retrain", action="store_true",
                        help="train again although this run identity already finished "
                             "(default: report the finished run and train nothing)")
    parser.add_argument("--from-study", metavar="STUDY",
                        help="apply the best parameters of an HPO study (name or HPO file); "
                             "without --config also its cell config")
    parser.add_argument("--study-storage", metavar="URL",
                        help="Optuna storage of --from-study (default: the workspace's)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Train and print where the run is in MLflow."""
    # imported here: mlflow and torch load only when this command runs, and mlflow's import
    # must not configure logging before the CLI has
    from finscale.datasets.splits import SplitTooSmallError
    from finscale.features.build import MissingRawDataError
    from finscale.models.budget import BudgetMismatchError
    from finscale.thermal.policy import ThermalTimeoutError, ThermalUnknownError
    from finscale.thermal.sensors import NoThermalSensorError
    from finscale.tracking import TrackingTarget
    from finscale.training.batch_size import BatchSizeError
    from finscale.training.checkpoint import CheckpointError
    from finscale.training.device import DeviceUnavailableError
    from finscale.training.losses import NoPositivesError
    from finscale.training.metrics import NoUsableTaskError
    from finscale.training.run import train_run
    from finscale.training.run_lock import RunLockedError

    refusals = (BudgetMismatchError, NoThermalSensorError, ThermalUnknownError,
                ThermalTimeoutError, SplitTooSmallError, MissingRawDataError, BatchSizeError,
                CheckpointError, DeviceUnavailableError, NoPositivesError, NoUsableTaskError,
                RunLockedError)
    if args.train_config:
        args.config = [*(args.config or []), *args.train_config]
    overrides: list[str] | None = list(args.overrides)
    if args.from_study:
        from finscale.cli.hpo import study_overrides

        overrides = study_overrides(args, list(args.overrides))
        if overrides is None:
            return EXIT_REFUSED
    context = build_context(args, extra_overrides=overrides)
    try:
        result = train_run(context.config, context.workspace, resume=args.resume,
                           retrain=args.retrain)
    except refusals as exc:
        print(f"train refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    target = TrackingTarget.for_workspace(context.workspace, context.config.tracking.experiment,
                                          context.config.tracking.uri)
    if result.reused:
        print("already finished: this run identity has a FINISHED MLflow run, nothing was "
              "trained (--retrain trains it again)")
    print(f"run key      {result.run_key}")
    print(f"stop reason  {result.stop_reason}")
    print(f"parameters   {result.n_parameters:,} on {result.device}")
    print(f"best {result.metric_name:<8}{result.best_metric}")
    print(f"collapsed    {str(result.collapsed).lower()}")
    excluded = ", ".join(result.excluded_tasks) or "none"
    print(f"excluded     {excluded} (below training.min_task_positives in val)")
    print(f"checkpoint   {result.checkpoint_path}")
    print(f"seconds      {result.seconds:.1f}")
    print(f"mlflow       experiment {result.experiment_id} "
          f"'{context.config.tracking.experiment}', run {result.run_id}")
    print(f"tracking     {result.tracking_uri}")
    print(f"view it      {target.ui_hint()}")
    print(f"             then open {target.run_url(result.experiment_id, result.run_id)}")
    return 0
