"""`finscale manifest` commands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `manifest` sub-command (filled in by its owning area)."""
    sub.add_parser("manifest", help="(not yet available)")
