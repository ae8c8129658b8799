"""`finscale train` commands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` sub-command (filled in by its owning area)."""
    sub.add_parser("train", help="(not yet available)")
