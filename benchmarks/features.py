"""Benchmark the feature engine and windowed batch assembly on the shared real data.

Prints, each against its goal and a named reference measured in the same run:
- tier a20 on SPY (ms; goal < 100 ms), reference: reading SPY's CSV with pandas;
- tier a500 on SPY + DIA + QQQ (s; goal < 10 s), reference: a20 on the same tickers;
- batch assembly from the windowed dataset (samples/s; goal > 100k for batch 256,
  context 80, a100 width), reference: stacking per-sample copies (torch.stack of items).

Usage: .venv/bin/python benchmarks/features.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from finscale.data.sources.base import MARKET_COLUMNS, MARKET_INDEX
from finscale.datasets.windows import WindowedDataset
from finscale.features.engine import compute_tier, load_tier
from finscale.features.paths import resolve_tiers_dir

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GOAL_A20_MS = 100.0
GOAL_A500_S = 10.0
GOAL_BATCH_SPS = 100_000.0
BATCH = 256
CONTEXT = 80
BATCH_FEATURES = 100
BATCH_ROWS = 8_000
BATCH_ROUNDS = 200
REPEATS = 5


def best_of(function: Callable[[], object], repeats: int = REPEATS) -> float:
    """Fastest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def read_bars(data: Path, ticker: str) -> pd.DataFrame:
    frame = pd.read_csv(data / "market" / f"{ticker}.csv", parse_dates=[MARKET_INDEX],
                        index_col=MARKET_INDEX)
    return frame[list(MARKET_COLUMNS)].astype("float64")


def bench_tiers(data: Path) -> None:
    tiers_dir = resolve_tiers_dir("configs/features")
    a20, a500 = load_tier("a20", tiers_dir), load_tier("a500", tiers_dir)
    vix = read_bars(data, "VIX")
    bars = {t: read_bars(data, t) for t in ("SPY", "DIA", "QQQ")}
    read_s = best_of(lambda: read_bars(data, "SPY"))
    a20_s = best_of(lambda: compute_tier(a20, bars["SPY"], vix=vix))
    print(f"a20 on SPY ({len(bars['SPY'])} rows): {a20_s * 1e3:.1f} ms "
          f"(goal < {GOAL_A20_MS:.0f} ms: {'met' if a20_s * 1e3 < GOAL_A20_MS else 'MISSED'}); "
          f"reference read_csv SPY {read_s * 1e3:.1f} ms, ratio {a20_s / read_s:.1f}x")
    a20_all = best_of(lambda: [compute_tier(a20, b, vix=vix) for b in bars.values()], 3)
    a500_s = best_of(lambda: [compute_tier(a500, b, vix=vix) for b in bars.values()], 3)
    print(f"a500 on SPY+DIA+QQQ: {a500_s:.2f} s (goal < {GOAL_A500_S:.0f} s: "
          f"{'met' if a500_s < GOAL_A500_S else 'MISSED'}); reference a20 on the same "
          f"{a20_all:.3f} s, ratio {a500_s / a20_all:.1f}x for {len(a500) // len(a20)}x features")


def bench_batches() -> None:
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(BATCH_ROWS, BATCH_FEATURES, generator=gen)
    labels = (torch.rand(BATCH_ROWS, 4, generator=gen) > 0.5).float()
    dates = np.datetime64("1990-01-01") + np.arange(BATCH_ROWS).astype("timedelta64[D]")
    dataset = WindowedDataset(features, labels, torch.arange(CONTEXT - 1, BATCH_ROWS), CONTEXT,
                              dates=dates, task_names=[f"t{i}" for i in range(4)],
                              feature_names=[f"f{i}" for i in range(BATCH_FEATURES)])
    batches = [torch.randint(0, len(dataset), (BATCH,), generator=gen)
               for _ in range(BATCH_ROUNDS)]

    def gather() -> None:
        for index in batches:
            dataset.batch(index)

    def stacked() -> None:
        for index in batches[:20]:
            torch.stack([dataset[int(i)][0] for i in index])

    gather_s = best_of(gather, 3)
    stack_s = best_of(stacked, 3)
    sps = BATCH * BATCH_ROUNDS / gather_s
    ref_sps = BATCH * 20 / stack_s
    print(f"batch assembly (batch {BATCH}, context {CONTEXT}, {BATCH_FEATURES} features): "
          f"{sps:,.0f} samples/s (goal > {GOAL_BATCH_SPS:,.0f}: "
          f"{'met' if sps > GOAL_BATCH_SPS else 'MISSED'}); reference per-item torch.stack "
          f"{ref_sps:,.0f} samples/s, ratio {sps / ref_sps:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("FINSCALE_DATA_MIRROR") or DEFAULT_DATA))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, nproc {os.cpu_count()}, "
          f"torch threads {torch.get_num_threads()}, python {platform.python_version()}")
    bench_tiers(args.data)
    bench_batches()


if __name__ == "__main__":
    main()
