"""`finscale data` commands: refresh raw market/FRED data, and show what is stored."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from finscale.cli.choices import SOURCES
from finscale.cli.common import AppContext, build_context, print_table

# the data layer (pydantic, pandas, SQLAlchemy) loads when a verb runs, not for `--help`
if TYPE_CHECKING:
    from finscale.data.refresh import RefreshSummary
    from finscale.data.refresh_log import RefreshCheck
    from finscale.io.atomic import ChecksumMismatchError
    from finscale.manifest.store import ArtifactRecord, Manifest

EXIT_FAILED_SERIES = 1
EXIT_SOURCE_ERROR = 2
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def symbol_argument(value: str) -> str:
    """argparse type of a ticker or series id: refused at the command line, one line."""
    from finscale.data.config import InvalidSymbolError, check_symbol

    try:
        return check_symbol(value)
    except InvalidSymbolError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def damaged_file_message(manifest: Manifest, exc: ChecksumMismatchError) -> str:
    """One line for a stored file that failed its MD5: the error and how to repair it."""
    from finscale.data.refresh import FRED_KIND, MARKET_KIND, full_refresh_hint

    owner = next((r for r in manifest.all_versions()
                  if exc.path is not None and manifest.absolute(r) == exc.path), None)
    if owner is not None and owner.kind in (MARKET_KIND, FRED_KIND):
        return f"{owner.name}: {exc}; run {full_refresh_hint(owner.name)} to re-fetch it"
    return (f"{exc}; `finscale manifest verify` lists damaged files, "
            f"{full_refresh_hint()} re-fetches raw data")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `data refresh` and `data status`."""
    data = sub.add_parser("data", help="refresh and inspect raw market/FRED data")
    commands = data.add_subparsers(dest="data_command", required=True)

    refresh = commands.add_parser(
        "refresh", help="incremental, validated refresh of tickers and FRED series"
    )
    refresh.add_argument(
        "--source", choices=SOURCES,
        help="csv: tickers and FRED series from the mirror; yahoo: tickers from Yahoo; fred: "
             "FRED series from FRED; online: both from the vendors (default: data.source)",
    )
    refresh.add_argument(
        "--mirror", type=Path,
        help="csv mirror folder (market/, fred/); default data.mirror, else $FINSCALE_DATA_MIRROR",
    )
    refresh.add_argument(
        "--full", action="store_true",
        help="re-fetch full histories; an incremental refresh re-reads only the last "
             "data.overlap_days rows, so a restatement older than that is caught only by --full",
    )
    refresh.add_argument(
        "--tickers", nargs="*", type=symbol_argument,
        help="tickers (default: data.tickers; the bare flag: none)",
    )
    refresh.add_argument(
        "--series", nargs="*", type=symbol_argument,
        help="FRED series (default: data.fred_series; the bare flag: none)",
    )
    refresh.set_defaults(func=run_refresh)

    status = commands.add_parser(
        "status", help="table of the stored raw series and when each was last checked"
    )
    status.set_defaults(func=run_status)


def _summary_rows(summaries: list[RefreshSummary]) -> list[list[object]]:
    return [
        [s.name, s.status.value, f"+{s.rows_added}", s.rows,
         s.version if s.version is not None else "-", s.reason]
        for s in summaries
    ]


def _refresh(ctx: AppContext, args: argparse.Namespace) -> list[RefreshSummary]:
    from finscale.data.refresh import refresh_universe
    from finscale.data.sources import make_macro_source, make_market_source

    config = ctx.config.data
    manifest = ctx.manifest()
    try:
        market = make_market_source(config, args.mirror, cache_dir=ctx.workspace.cache_dir)
        macro = make_macro_source(config, args.mirror)
        return refresh_universe(
            manifest, ctx.workspace, config, market_source=market, macro_source=macro,
            tickers=args.tickers, fred_series=args.series, full=args.full,
        )
    finally:
        manifest.close()


def run_refresh(args: argparse.Namespace) -> int:
    """Refresh the universe; exit 1 when any series failed, 2 when the source is unusable."""
    from finscale.data.refresh import RefreshStatus
    from finscale.data.sources.base import OFFLINE_HINT, SourceError, SourceUnreachableError

    overrides = [f"data.source={args.source}"] if args.source else []
    ctx = build_context(args, overrides)
    try:
        summaries = _refresh(ctx, args)
    except SourceUnreachableError as exc:
        hint = "" if "--mirror" in str(exc) else f"\n{OFFLINE_HINT}"
        print(f"data refresh: source unreachable: {exc}{hint}", file=sys.stderr)
        return EXIT_SOURCE_ERROR
    except SourceError as exc:
        print(f"data refresh: {exc}", file=sys.stderr)
        return EXIT_SOURCE_ERROR
    print_table(["name", "status", "added", "rows", "version", "reason"], _summary_rows(summaries))
    failed = [s for s in summaries if s.status is RefreshStatus.FAILED]
    for summary in failed:
        print(f"FAILED {summary.name}: {summary.reason}", file=sys.stderr)
    return EXIT_FAILED_SERIES if failed else 0


def _status_rows(
    records: list[ArtifactRecord], checks: dict[str, RefreshCheck]
) -> list[list[object]]:
    """One row per stored series, plus series checked but never stored (failed first fetch)."""
    rows: list[list[object]] = []
    stored = {r.name: r for r in records}
    for name in sorted(set(stored) | set(checks)):
        record, check = stored.get(name), checks.get(name)
        rows.append([
            name,
            record.rows if record else "-",
            (record.first_date or "-") if record else "-",
            (record.last_date or "-") if record else "-",
            record.md5 if record else "-",
            record.version if record else "-",
            record.created_at.strftime(TIME_FORMAT) if record else "-",
            check.checked_at.strftime(TIME_FORMAT) if check else "never",
            f"{check.status} ({check.source})" if check else "-",
        ])
    return rows


def _valid_names_only(
    records: list[ArtifactRecord], checks: dict[str, RefreshCheck]
) -> tuple[list[ArtifactRecord], dict[str, RefreshCheck]]:
    """Drop names no refresh accepts now (stored or logged before names were validated)."""
    from finscale.data.universe import is_raw_artifact_name

    junk = sorted({r.name for r in records} | set(checks))
    junk = [name for name in junk if not is_raw_artifact_name(name)]
    if junk:
        print(f"ignored {len(junk)} name(s) that are not valid series names: {junk[:5]}",
              file=sys.stderr)
    return ([r for r in records if r.name not in junk],
            {k: v for k, v in checks.items() if k not in junk})


def run_status(args: argparse.Namespace) -> int:
    """Print the latest stored version of every raw series and its last check."""
    from finscale.data.refresh import FRED_KIND, MARKET_KIND, RefreshStatus
    from finscale.data.refresh_log import RefreshLog

    ctx = build_context(args)
    manifest = ctx.manifest()
    check_log = RefreshLog(ctx.workspace.manifest_url)
    try:
        records = [r for r in manifest.all_latest() if r.kind in (MARKET_KIND, FRED_KIND)]
        checks = check_log.last_checks()
    finally:
        check_log.close()
        manifest.close()
    records, checks = _valid_names_only(records, checks)
    if not records and not checks:
        print(f"no raw data in {ctx.workspace.home}; run `finscale data refresh` first")
        return 0
    print_table(
        ["name", "rows", "first", "last", "md5", "version", "stored (UTC)",
         "last refresh (UTC)", "outcome"],
        _status_rows(records, checks),
    )
    failed = [name for name, check in checks.items() if check.status == RefreshStatus.FAILED]
    for name in sorted(failed):
        print(f"last check of {name} FAILED: {checks[name].reason}", file=sys.stderr)
    return 0
