"""`finscale data` commands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `data` sub-command (filled in by its owning area)."""
    sub.add_parser("data", help="(not yet available)")
