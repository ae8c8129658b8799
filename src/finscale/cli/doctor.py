"""`finscale doctor` commands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `doctor` sub-command (filled in by its owning area)."""
    sub.add_parser("doctor", help="(not yet available)")
