"""Benchmark: what running each Yahoo download in its own child process costs.

YahooSource runs every ``yf.download`` in a fresh child process (``finscale.data.isolated_call``)
so a hung call can be killed and share nothing with the next one. Measured here, alternately:

- the child's round trip for a call that does nothing, with yfinance and pandas preloaded as
  YahooSource preloads them: the price of the isolation per call (interpreter start, imports,
  pickles; only the call itself is charged to the time limit, not this start-up);
- the same round trip with nothing preloaded (a bare interpreter's share of it);
- the reference: the same call in-process (what a worker thread would cost, ~0).

Usage: python benchmarks/isolated_call.py [--repeats N]
"""

from __future__ import annotations

import argparse
import operator
import os
import statistics
import time
from collections.abc import Callable, Sequence

from finscale.data.isolated_call import call_in_subprocess
from finscale.data.sources.yahoo import CHILD_PRELOAD


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _isolated(preload: Sequence[str]) -> Callable[[], object]:
    return lambda: call_in_subprocess(operator.add, 1, 2, timeout_s=60, what="noop",
                                      preload=preload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rivals = {"child, yfinance+pandas preloaded": _isolated(CHILD_PRELOAD),
              "child, nothing preloaded": _isolated(()),
              "in-process": lambda: operator.add(1, 2)}
    times: dict[str, list[float]] = {name: [] for name in rivals}
    for _ in range(args.repeats):  # alternately, so load drifts hit every rival alike
        for name, run in rivals.items():
            times[name].append(_timed(run))
    print(f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, repeats {args.repeats}")
    for name, values in times.items():
        print(f"{name:34s} median {statistics.median(values) * 1000:9.3f} ms "
              f"(range {min(values) * 1000:.3f}..{max(values) * 1000:.3f})")


if __name__ == "__main__":
    main()
