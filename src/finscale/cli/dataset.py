"""`finscale dataset` commands: build the configured dataset, describe its splits."""

from __future__ import annotations

import argparse
import sys

from finscale.cli.choices import TIMESCALES
from finscale.cli.common import build_context, print_table
from finscale.cli.data import damaged_file_message, symbol_argument

EXIT_REFUSED = 3


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ticker", type=symbol_argument, help="target ticker (dataset.ticker)")
    parser.add_argument("--tier", help="feature tier (dataset.tier)")
    parser.add_argument("--context", type=int, help="rows per input window (dataset.context)")
    parser.add_argument("--cross-assets", nargs="*", type=symbol_argument,
                        help="other tickers as inputs")
    parser.add_argument("--pooled", nargs="*", type=symbol_argument,
                        help="stack these tickers (dataset.pooled_tickers)")
    parser.add_argument("--fold", type=int, metavar="K",
                        help="walk-forward fold K's ranges (dataset.splits.walk_forward.fold; "
                        "default folds unless dataset.splits.walk_forward sets them)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dataset build` and `dataset describe`."""
    dataset = sub.add_parser("dataset", help="build datasets; split sizes and class balance")
    commands = dataset.add_subparsers(dest="dataset_command", required=True)
    build = commands.add_parser("build", help="build (or reuse) the configured dataset")
    _add_selection(build)
    build.add_argument("--horizon", type=int, help="label horizon in bars (dataset.horizon)")
    build.add_argument("--timescale", choices=TIMESCALES, help="dataset.timescale")
    build.set_defaults(func=run_build)
    describe = commands.add_parser(
        "describe", help="samples and positives per split, task and horizon (daily + weekly)"
    )
    _add_selection(describe)
    describe.add_argument("--no-weekly", action="store_true", help="daily horizons only")
    describe.set_defaults(func=run_describe)


def _overrides(args: argparse.Namespace) -> list[str]:
    chosen = {"ticker": args.ticker, "tier": args.tier, "context": args.context,
              "horizon": getattr(args, "horizon", None),
              "timescale": getattr(args, "timescale", None)}
    out = [f"dataset.{key}={value}" for key, value in chosen.items() if value is not None]
    if args.cross_assets is not None:
        out.append(f"dataset.cross_assets=[{','.join(args.cross_assets)}]")
    if args.fold is not None:
        out.append(f"dataset.splits.walk_forward.fold={args.fold}")
    if args.pooled is not None:
        out.append(f"dataset.pooled_tickers=[{','.join(args.pooled)}]")
    return out


def run_build(args: argparse.Namespace) -> int:
    # imported here: the dataset modules load torch and pandas, which `--help` does not need
    from finscale.datasets.build import build_dataset
    from finscale.datasets.splits import SplitTooSmallError, fold_label
    from finscale.features.build import MissingRawDataError
    from finscale.io.atomic import ChecksumMismatchError

    ctx = build_context(args, _overrides(args))
    manifest = ctx.manifest()
    try:
        record = build_dataset(manifest, ctx.workspace, ctx.config)
    except (SplitTooSmallError, MissingRawDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except ChecksumMismatchError as exc:
        print(f"error: {damaged_file_message(manifest, exc)}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        manifest.close()
    meta = record.meta
    label = fold_label(ctx.config.dataset.splits)
    if label:
        print(label)
    print(f"{record.name} v{record.version}: {record.rows} rows, {len(meta['features'])} "
          f"features, {len(meta['tasks'])} tasks, md5 {record.md5}")
    for drop in meta["drop_report"]:
        print(f"  {drop['ticker']}: {drop['rows_in']} bars, {drop['rows_kept']} kept, "
              f"dropped {drop['dropped']}")
    for split in meta["split_report"]["splits"]:
        print(f"  {split['name']}: {split['samples']} samples, "
              f"{split['first_span_start']}..{split['last_label_end']} "
              f"(range {split['range_start']}..{split['range_end']})")
    return 0


def run_describe(args: argparse.Namespace) -> int:
    from finscale.datasets.describe import (
        describe_horizons,
        drop_lines,
        refusal_reason,
        report_rows,
        variant_label,
    )
    from finscale.datasets.splits import fold_label
    from finscale.features.build import MissingRawDataError
    from finscale.io.atomic import ChecksumMismatchError

    ctx = build_context(args, _overrides(args))
    manifest = ctx.manifest()
    try:
        reports = describe_horizons(manifest, ctx.workspace, ctx.config,
                                    include_weekly=not args.no_weekly)
    except MissingRawDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except ChecksumMismatchError as exc:
        print(f"error: {damaged_file_message(manifest, exc)}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        manifest.close()
    dataset = ctx.config.dataset
    thresholds = [f"pos {t * 100:g}%" for t in dataset.thresholds]
    label = fold_label(dataset.splits)
    print(f"{dataset.ticker} tier {dataset.tier}, context {dataset.context}, "
          f"min_samples {dataset.splits.min_samples}" + (f", {label}" if label else ""))
    print_table(["horizon", "split", "samples", "span start", "label end", *thresholds],
                report_rows(reports))
    refusals = [f"  {variant_label(item)} {stats.name}: {refusal_reason(stats, item)}"
                for item in reports for stats in item.report.splits
                if refusal_reason(stats, item)]
    for line in ["rows dropped before splitting:", *drop_lines(reports), *refusals]:
        print(line)
    return 0
