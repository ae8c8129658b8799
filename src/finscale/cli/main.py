"""The ``finscale`` command: one sub-command module per area."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from finscale.cli import data as data_cmd
from finscale.cli import (
    dataset,
    demo,
    doctor,
    experiment,
    features,
    hpo,
    manifest,
    report,
    train,
)
from finscale.config import ConfigError

COMMAND_MODULES = (data_cmd, manifest, doctor, features, dataset, train, hpo, experiment,
                   report, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finscale", description=__doc__)
    parser.add_argument("--config", action="append", help="YAML config (repeatable; later wins)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    parser.add_argument("--home", help="workspace folder (default $FINSCALE_HOME or ./workspace)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
