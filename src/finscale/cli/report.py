"""`finscale report EXPERIMENT`: the experiment's report, written and logged to MLflow."""

from __future__ import annotations

import argparse
import sys

from finscale.cli.common import build_context

EXIT_REFUSED = 3  # nothing to report, or no such experiment: the message says which


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``finscale report EXPERIMENT [--no-baselines]``."""
    parser = sub.add_parser(
        "report", help="results table, plots and summary of an experiment, logged to MLflow",
        description="Write <workspace>/reports/<experiment>/index.html and report.md with "
        "PNG plots and the results table, and log them under the experiment's parent run.")
    parser.add_argument("experiment", metavar="EXPERIMENT",
                        help="an MLflow experiment name (all its runs), an experiment matrix "
                        "(a file, or a name under configs/experiments: its phase's runs) or "
                        "a config file (its phase's runs)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="do not score the matrix's missing baselines first")
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Publish the report and print the path of its index.html."""
    # imported here: pandas, matplotlib, torch and mlflow load only when this verb runs
    from finscale.evaluation.publish import ReportError, report_experiment

    context = build_context(args)
    try:
        published = report_experiment(args.experiment, context.config, context.workspace,
                                      baselines=not args.no_baselines)
    except ReportError as exc:
        print(f"report refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    skipped = ", ".join(f"{n} {reason}" for reason, n in published.skipped_runs.items())
    print(f"{published.rows} rows, {len(published.images)} plots"
          + (f"; runs left out: {skipped}" if skipped else ""))
    print(f"logged under MLflow run {published.parent_run_id}")
    print(published.index)
    return 0
