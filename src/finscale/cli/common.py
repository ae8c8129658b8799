"""Shared CLI plumbing: config + workspace from the global options.

Imports nothing heavy at module level (pydantic, SQLAlchemy, pandas load when a verb runs),
so that building the parser for ``finscale --help`` stays fast.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from finscale.config import AppConfig
    from finscale.manifest.store import Manifest
    from finscale.workspace import Workspace


@dataclass(frozen=True)
class AppContext:
    """The resolved config and workspace a command runs against."""

    config: AppConfig
    workspace: Workspace

    def manifest(self) -> Manifest:
        from finscale.manifest.store import Manifest

        return Manifest.for_workspace(self.workspace)


def build_context(
    args: argparse.Namespace,
    extra_overrides: list[str] | None = None,
    *,
    ensure_workspace: bool = True,
) -> AppContext:
    """Load config (files + --set + command overrides) and resolve (and create) the workspace."""
    from finscale.runtime import load_runtime

    config, workspace = load_runtime(
        args.config, [*(args.set or []), *(extra_overrides or [])], args.home,
        ensure_workspace=ensure_workspace,
    )
    return AppContext(config=config, workspace=workspace)


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    """A plain aligned text table on stdout."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
