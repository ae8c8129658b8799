"""`finscale dataset` commands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `dataset` sub-command (filled in by its owning area)."""
    sub.add_parser("dataset", help="(not yet available)")
