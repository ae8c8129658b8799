"""One way to resolve the config and workspace that a command, task or flow runs against.

Config files: the explicit ones, else ``$FINSCALE_CONFIG``, else ``configs/base.yaml`` in the
working directory when present (deployments change into the checkout before they run).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from finscale.config import AppConfig, load_config
from finscale.workspace import Workspace

CONFIG_ENV = "FINSCALE_CONFIG"
DEFAULT_CONFIG = Path("configs/base.yaml")


def config_paths(explicit: Sequence[str | Path] | None = None) -> list[Path]:
    """The config files to layer, in order."""
    if explicit:
        return [Path(p) for p in explicit]
    if os.environ.get(CONFIG_ENV):
        return [Path(os.environ[CONFIG_ENV])]
    return [DEFAULT_CONFIG] if DEFAULT_CONFIG.is_file() else []


def load_runtime(
    explicit: Sequence[str | Path] | None = None,
    overrides: Sequence[str] = (),
    home: str | Path | None = None,
    *,
    ensure_workspace: bool = True,
) -> tuple[AppConfig, Workspace]:
    """The validated config and its workspace (``home`` wins over ``workspace.home``)."""
    config = load_config(*config_paths(explicit), overrides=list(overrides))
    workspace = Workspace.resolve(
        home or config.workspace.home, manifest_url=config.workspace.manifest_url
    )
    return config, workspace.ensure() if ensure_workspace else workspace
