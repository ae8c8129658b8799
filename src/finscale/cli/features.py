"""`finscale features` commands: build feature tables into the manifest, list a tier."""

from __future__ import annotations

import argparse
import sys

from finscale.cli.choices import TIMESCALES
from finscale.cli.common import build_context, print_table
from finscale.cli.data import damaged_file_message, symbol_argument

EXIT_MISSING_DATA = 3


def register(sub: argparse._SubParsersAction) -> None:
    """Add `features build` and `features list`."""
    features = sub.add_parser("features", help="feature tiers: build tables, list declarations")
    commands = features.add_subparsers(dest="features_command", required=True)

    build = commands.add_parser("build", help="compute (or reuse) feature tables per ticker")
    build.add_argument("--tier", help="tier name (default: features.tier of the config)")
    build.add_argument("--tickers", nargs="+", type=symbol_argument,
                       help="tickers (default: dataset.ticker)")
    build.add_argument("--timescale", choices=TIMESCALES, default="daily")
    build.set_defaults(func=run_build)

    listing = commands.add_parser("list", help="every feature of a tier with its description")
    listing.add_argument("--tier", help="tier name (default: features.tier of the config)")
    listing.set_defaults(func=run_list)


def run_build(args: argparse.Namespace) -> int:
    # imported here: the feature layer loads pandas and TA-Lib, which `--help` does not need
    from finscale.features.build import MissingRawDataError, build_feature_table
    from finscale.io.atomic import ChecksumMismatchError

    ctx = build_context(args)
    tier = args.tier or ctx.config.features.tier
    tickers = args.tickers or [ctx.config.dataset.ticker]
    manifest = ctx.manifest()
    rows: list[list[object]] = []
    try:
        for ticker in tickers:
            result = build_feature_table(manifest, ctx.workspace, ctx.config.features,
                                         tier_name=tier, ticker=ticker, timescale=args.timescale)
            record = result.record
            columns = len(record.meta.get("features", []))
            rows.append([result.name, "built" if result.created else "reused", record.version,
                         record.rows, columns, record.first_date, record.last_date,
                         record.md5[:12]])
    except MissingRawDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_MISSING_DATA
    except ChecksumMismatchError as exc:
        print(f"error: {damaged_file_message(manifest, exc)}", file=sys.stderr)
        return EXIT_MISSING_DATA
    finally:
        manifest.close()
    print_table(["artifact", "action", "version", "rows", "features", "first", "last", "md5"],
                rows)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from finscale.config import ConfigError
    from finscale.features.engine import describe_tier, load_tier
    from finscale.features.macro import MACRO_TIER, load_macro_tier
    from finscale.features.paths import resolve_tiers_dir
    from finscale.features.vix import VIX_TIER, load_vix_tier

    ctx = build_context(args)
    name = args.tier or ctx.config.features.tier
    try:
        tiers_dir = resolve_tiers_dir(ctx.config.features.tiers_dir)
        if name == VIX_TIER:
            tier = load_vix_tier(tiers_dir)
        elif name == MACRO_TIER:
            tier = load_macro_tier(tiers_dir)
        else:
            tier = load_tier(name, tiers_dir)
    except ConfigError as exc:
        print(f"error: tier '{name}': {exc}", file=sys.stderr)
        return 2
    rows = [[i + 1, d["name"], d["family"], d["params"], d["description"]]
            for i, d in enumerate(describe_tier(tier))]
    print_table(["#", "feature", "family", "params", "description"], rows)
    print(f"\ntier {tier.name}: {len(tier)} features, warm-up up to {tier.max_lookback} rows")
    return 0
