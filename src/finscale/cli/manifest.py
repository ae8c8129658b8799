"""`finscale manifest` commands: list artifact versions and verify files against their MD5."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from finscale.cli.common import build_context, print_table

if TYPE_CHECKING:  # the store loads SQLAlchemy and pandas: only when a verb runs
    from finscale.manifest.store import ArtifactRecord

EXIT_MISMATCH = 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add `manifest list` and `manifest verify`."""
    manifest = sub.add_parser("manifest", help="list and verify stored artifacts")
    commands = manifest.add_subparsers(dest="manifest_command", required=True)

    listing = commands.add_parser("list", help="latest version of each artifact")
    listing.add_argument("--name", help="only this artifact (all of its versions)")
    listing.add_argument("--kind", help="only artifacts of this kind (e.g. raw_market)")
    listing.add_argument("--all", action="store_true", help="every version, not only the latest")
    listing.set_defaults(func=run_list)

    verify = commands.add_parser("verify", help="check every file exists and matches its MD5")
    verify.add_argument("--name", help="only the versions of this artifact")
    verify.set_defaults(func=run_verify)


def _select(records: list[ArtifactRecord], kind: str | None) -> list[ArtifactRecord]:
    return [r for r in records if kind is None or r.kind == kind]


def run_list(args: argparse.Namespace) -> int:
    """Print artifact versions as a table."""
    ctx = build_context(args)
    manifest = ctx.manifest()
    try:
        if args.name:
            records = manifest.history(args.name)
        elif args.all:
            records = manifest.all_versions()
        else:
            records = manifest.all_latest()
    finally:
        manifest.close()
    records = _select(records, args.kind)
    rows = [
        [r.id, r.name, r.version, r.kind, r.rows, r.first_date or "-", r.last_date or "-",
         r.md5, r.source, ",".join(map(str, r.parent_ids)) or "-", r.path]
        for r in records
    ]
    print_table(
        ["id", "name", "version", "kind", "rows", "first", "last", "md5", "source", "parents",
         "path"],
        rows,
    )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Verify files against the manifest; exit 1 naming each missing or changed file."""
    ctx = build_context(args)
    manifest = ctx.manifest()
    try:
        records = manifest.history(args.name) if args.name else None
        results = manifest.verify(records)
    finally:
        manifest.close()
    bad = [r for r in results if not r.ok]
    for result in bad:
        record = result.record
        print(f"MISMATCH {record.name} v{record.version}: {record.path}: {result.reason}",
              file=sys.stderr)
    print(f"verified {len(results)} file(s): {len(results) - len(bad)} ok, {len(bad)} failed")
    return EXIT_MISMATCH if bad else 0
