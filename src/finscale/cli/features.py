"""`finscale features` commands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `features` sub-command (filled in by its owning area)."""
    sub.add_parser("features", help="(not yet available)")
