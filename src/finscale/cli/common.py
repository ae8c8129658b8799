"""Shared CLI plumbing: config + workspace from the global options."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from finscale.config import AppConfig, load_config
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

CONFIG_ENV = "FINSCALE_CONFIG"
DEFAULT_CONFIG = Path("configs/base.yaml")


@dataclass(frozen=True)
class AppContext:
    """The resolved config and workspace a command runs against."""

    config: AppConfig
    workspace: Workspace

    def manifest(self) -> Manifest:
        return Manifest(self.workspace.manifest_url, self.workspace.home)


def config_paths(args: argparse.Namespace) -> list[Path]:
    """--config files, else $FINSCALE_CONFIG, else configs/base.yaml when present."""
    if args.config:
        return [Path(p) for p in args.config]
    if os.environ.get(CONFIG_ENV):
        return [Path(os.environ[CONFIG_ENV])]
    return [DEFAULT_CONFIG] if DEFAULT_CONFIG.is_file() else []


def build_context(args: argparse.Namespace, extra_overrides: list[str] | None = None) -> AppContext:
    """Load config (files + --set + command overrides) and resolve the workspace."""
    overrides = [*(args.set or []), *(extra_overrides or [])]
    config = load_config(*config_paths(args), overrides=overrides)
    workspace = Workspace.resolve(
        args.home or config.workspace.home, manifest_url=config.workspace.manifest_url
    ).ensure()
    return AppContext(config=config, workspace=workspace)


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    """A plain aligned text table on stdout."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
