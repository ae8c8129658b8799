"""Retries with exponential back-off and jitter, and a wall-clock bound for calls that hang.

Only ``TransientSourceError`` is retried; ``PermanentSourceError`` (unknown ticker, bad key,
malformed payload) and ``SourceUnreachableError`` (DNS failure, connection refused: offline)
propagate at once. The wall-clock bound exists because
yfinance and fredapi ignore or lack timeouts when the network hangs (STACK-NOTES).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from finscale.data.config import RetryConfig
from finscale.data.sources.base import SourceUnreachableError, TransientSourceError

T = TypeVar("T")

log = logging.getLogger(__name__)

WORKER_THREAD_PREFIX = "finscale-bounded-call"


def backoff_delays(retry: RetryConfig, rng: random.Random | None = None) -> list[float]:
    """The sleeps between attempts: base * 2**k capped at max, each with its jitter share drawn.

    A delay ``d`` becomes ``d * (1 - jitter) + d * jitter * U[0, 1)``, so jitter=0 is the pure
    exponential sequence and jitter=1 is "full jitter".
    """
    rng = rng or random.Random()
    delays: list[float] = []
    for k in range(retry.attempts - 1):
        nominal = min(retry.max_delay_s, retry.base_delay_s * (2**k))
        delays.append(nominal * (1.0 - retry.jitter) + nominal * retry.jitter * rng.random())
    return delays


def call_with_retry(
    fn: Callable[[], T],
    *,
    retry: RetryConfig,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Call ``fn`` until it succeeds, retrying TransientSourceError up to ``retry.attempts``.

    The final error is a TransientSourceError naming ``what`` and the number of attempts, chained
    to the last underlying error.
    """
    delays = backoff_delays(retry, rng)
    last: TransientSourceError | None = None
    for attempt in range(1, retry.attempts + 1):
        try:
            return fn()
        except SourceUnreachableError:
            raise
        except TransientSourceError as exc:
            last = exc
            if attempt == retry.attempts:
                break
            delay = delays[attempt - 1]
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.2fs",
                what, attempt, retry.attempts, exc, delay,
            )
            sleep(delay)
    raise TransientSourceError(
        f"{what}: failed after {retry.attempts} attempt(s); last error: {last}"
    ) from last


def call_with_timeout(
    fn: Callable[[], T], *, timeout_s: float, what: str, hint: str = ""
) -> T:
    """Run ``fn`` in a daemon worker thread and give up after ``timeout_s`` seconds.

    On timeout raises TransientSourceError naming ``what`` and the limit (then ``hint``). The
    worker cannot be killed; it is a daemon thread, so a hung socket never blocks interpreter
    exit, and its late result is discarded.
    """
    outcome: dict[str, object] = {}
    done = threading.Event()

    def worker() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=worker, name=f"{WORKER_THREAD_PREFIX}:{what}", daemon=True)
    thread.start()
    if not done.wait(timeout_s):
        suffix = f"; {hint}" if hint else ""
        raise TransientSourceError(f"{what}: no answer within the {timeout_s:g}s timeout{suffix}")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
