"""Benchmark: cold refresh of the whole universe from the csv mirror vs an unchanged re-run.

Reference: the cold refresh (fetch, validate, write Parquet, register) of 4 tickers and 9
FRED series into an empty temp workspace. Measured against it, in the same run:

- unchanged re-run with the mirror's file fingerprint (the stored Parquet's MD5 is still
  verified on that path): goal < 20% of cold;
- unchanged re-run without the fingerprint (fetch + compare the overlap), i.e. the path an
  online source takes; its verdict against the same goal is printed too.

Every run also appends one refresh-log row per series (``data status``'s last check).

Usage: python benchmarks/data_refresh.py [--mirror DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd

from finscale.config import AppConfig
from finscale.data.config import MIRROR_ENV, DataConfig
from finscale.data.refresh import RefreshStatus, RefreshSummary, refresh_universe
from finscale.data.sources import CsvMirrorSource
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

DEFAULT_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data"
GOAL_RATIO = 0.20


class UnfingerprintedCsv:
    """The csv mirror without its fingerprint capability: forces fetch-and-compare."""

    def __init__(self, inner: CsvMirrorSource) -> None:
        self.inner = inner
        self.name = inner.name

    def fetch_bars(self, ticker: str, start: date | None, end: date | None) -> pd.DataFrame:
        return self.inner.fetch_bars(ticker, start, end)

    def fetch_series(self, series_id: str, start: date | None, end: date | None) -> pd.DataFrame:
        return self.inner.fetch_series(series_id, start, end)


def _timed(run: Callable[[], list[RefreshSummary]]) -> tuple[float, list[RefreshSummary]]:
    started = time.perf_counter()
    summaries = run()
    return time.perf_counter() - started, summaries


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _one_round(config: DataConfig, mirror: Path) -> tuple[float, float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace.resolve(tmp).ensure()
        manifest = Manifest(workspace.manifest_url, workspace.home)
        market, macro = CsvMirrorSource(mirror), CsvMirrorSource(mirror)
        plain = UnfingerprintedCsv(CsvMirrorSource(mirror))

        def universe(market_src: object, macro_src: object) -> Callable[[], list]:
            return lambda: refresh_universe(manifest, workspace, config,
                                            market_source=market_src, macro_source=macro_src)

        cold, first = _timed(universe(market, macro))
        rerun, second = _timed(universe(market, macro))
        compare, third = _timed(universe(plain, plain))
        manifest.close()
    assert {s.status for s in first} == {RefreshStatus.NEW_ROWS}, first
    assert {s.status for s in second + third} == {RefreshStatus.UNCHANGED}
    return cold, rerun, compare, sum(s.rows for s in first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path,
                        default=Path(os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = AppConfig(data=DataConfig(source="csv")).data
    _one_round(config, args.mirror)  # warm-up: imports, calendar build, page cache
    rounds = [_one_round(config, args.mirror) for _ in range(args.repeats)]
    cold = statistics.median(r[0] for r in rounds)
    rerun = statistics.median(r[1] for r in rounds)
    compare = statistics.median(r[2] for r in rounds)
    rows = rounds[0][3]
    print(f"machine: {os.cpu_count()} CPUs ({_cpu_model()}), python {platform.python_version()}")
    print(f"universe: {len(config.tickers)} tickers + {len(config.fred_series)} FRED series, "
          f"{rows} rows; median of {args.repeats} rounds")
    print(f"cold refresh (reference):            {cold * 1000:8.1f} ms  {rows / cold:10.0f} rows/s")
    print(f"unchanged re-run (fingerprint + stored MD5 check, csv mirror): "
          f"{rerun * 1000:8.1f} ms  ratio {rerun / cold:.3f}")
    print(f"unchanged re-run (fetch + compare overlap, online path):    "
          f"{compare * 1000:8.1f} ms  ratio {compare / cold:.3f}")
    for label, ratio in (("fingerprint", rerun / cold), ("fetch + compare", compare / cold)):
        verdict = "meets" if ratio < GOAL_RATIO else "MISSES"
        print(f"goal: unchanged re-run < {GOAL_RATIO:.0%} of cold, {label} path -> {verdict}")


if __name__ == "__main__":
    main()
