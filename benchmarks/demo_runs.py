"""What the benchmarks that train the CPU demo run share: its config, the data, the options.

``instance_norm.py`` and ``cpu_autocast.py`` train configs/experiments/cpu_demo.yaml (SPY, tier
a20, horizon 1, budget 100k) once per variant and seed in a workspace filled from the csv
mirror, and report mean ± sample std over the seeds.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
from datetime import date
from pathlib import Path

import torch
from model_throughput import cpu_model  # benchmarks/ is the script's sys.path[0]

from finscale.config import AppConfig, load_config
from finscale.data.config import MIRROR_ENV
from finscale.data.refresh import RefreshStatus, refresh_universe
from finscale.data.sources import make_macro_source, make_market_source
from finscale.manifest.store import Manifest
from finscale.training.device import cpu_has_native_bf16
from finscale.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "experiments" / "cpu_demo.yaml"
DEFAULT_MIRROR = REPO.parent / "shared" / "data"


def refresh(config: AppConfig, workspace: Workspace, mirror: Path) -> None:
    """The configured universe from the csv mirror (`finscale data refresh --source csv`)."""
    data = config.data.model_copy(update={"source": "csv"})
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        summaries = refresh_universe(
            manifest, workspace, data, market_source=make_market_source(data, mirror),
            macro_source=make_macro_source(data, mirror),
        )
    finally:
        manifest.close()
    failed = [s for s in summaries if s.status == RefreshStatus.FAILED]
    if failed:
        raise SystemExit(f"refresh failed: {[(s.name, s.reason) for s in failed]}")


def demo_config(experiment: str, seed: int, epochs: int | None, *overrides: str) -> AppConfig:
    """The demo run with the variant's overrides, one seed, no logged model."""
    settings = [*overrides, f"training.seed={seed}", f"tracking.experiment={experiment}",
                "training.log_model=false"]
    if epochs is not None:
        settings.append(f"training.epochs={epochs}")
    return load_config(DEMO_CONFIG, overrides=settings)


def demo_run_parser(description: str) -> argparse.ArgumentParser:
    """--seeds, --epochs, --mirror, --threads; a script adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="default: the demo config's")
    parser.add_argument("--mirror", type=Path,
                        default=Path(os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR))
    parser.add_argument("--threads", type=int, default=1)
    return parser


def start(args: argparse.Namespace, demo: AppConfig) -> None:
    """Quiet logs, the thread count, and the line that says where and what ran."""
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    print(f"date {date.today()}, machine: {os.cpu_count()} CPUs ({cpu_model()}), native bf16 "
          f"{cpu_has_native_bf16()}, torch {torch.__version__}, {args.threads} thread(s); "
          f"{demo.dataset.ticker} {demo.dataset.tier} H{demo.dataset.horizon}, budget "
          f"{demo.model.budget}, {demo.training.epochs} epochs, seeds {args.seeds}", flush=True)


def spread(values: list[float], digits: int = 4) -> str:
    """Mean ± sample standard deviation (0 for one value)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"
