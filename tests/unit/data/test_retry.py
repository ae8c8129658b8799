"""Back-off with jitter: the delay sequence, what is retried, and the wall-clock bound."""

from __future__ import annotations

import random
import threading
import time

import pytest

from finscale.data.config import RetryConfig
from finscale.data.retry import backoff_delays, call_with_retry, call_with_timeout
from finscale.data.sources.base import (
    PermanentSourceError,
    SourceUnreachableError,
    TransientSourceError,
)


class Flaky:
    """Fails with the given errors in order, then returns "ok"; counts calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_backoff_without_jitter_is_exponential_and_capped() -> None:
    retry = RetryConfig(attempts=6, base_delay_s=1.0, max_delay_s=5.0, jitter=0.0)
    assert backoff_delays(retry, random.Random(0)) == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jittered_sequence_is_seeded_and_within_bounds() -> None:
    retry = RetryConfig(attempts=4, base_delay_s=2.0, max_delay_s=30.0, jitter=0.5)
    sleeps: list[float] = []
    flaky = Flaky(*(TransientSourceError(f"blip {i}") for i in range(3)))

    assert call_with_retry(flaky, retry=retry, what="t", sleep=sleeps.append,
                           rng=random.Random(7)) == "ok"

    assert flaky.calls == 4
    assert sleeps == backoff_delays(retry, random.Random(7))
    for nominal, slept in zip([2.0, 4.0, 8.0], sleeps, strict=True):
        assert nominal * 0.5 <= slept < nominal
    assert len(set(sleeps)) == 3


def test_permanent_error_is_not_retried() -> None:
    flaky = Flaky(PermanentSourceError("unknown ticker ZZZ"))
    sleeps: list[float] = []
    with pytest.raises(PermanentSourceError, match="ZZZ"):
        call_with_retry(flaky, retry=RetryConfig(), what="t", sleep=sleeps.append)
    assert flaky.calls == 1
    assert sleeps == []


def test_unreachable_host_fails_fast_without_retry() -> None:
    flaky = Flaky(SourceUnreachableError("DNS failed; use --mirror"))
    sleeps: list[float] = []
    with pytest.raises(SourceUnreachableError, match="--mirror"):
        call_with_retry(flaky, retry=RetryConfig(), what="t", sleep=sleeps.append)
    assert (flaky.calls, sleeps) == (1, [])


def test_final_error_names_what_and_attempts_and_chains_last_error() -> None:
    retry = RetryConfig(attempts=3, jitter=0.0)
    flaky = Flaky(*(TransientSourceError(f"HTTP 500 #{i}") for i in range(5)))
    with pytest.raises(TransientSourceError, match=r"yahoo SPY: failed after 3 attempt") as info:
        call_with_retry(flaky, retry=retry, what="yahoo SPY", sleep=lambda _: None)
    assert flaky.calls == 3
    assert "HTTP 500 #2" in str(info.value)
    assert isinstance(info.value.__cause__, TransientSourceError)


def test_other_exceptions_propagate_untouched() -> None:
    flaky = Flaky(KeyError("bug"))
    with pytest.raises(KeyError):
        call_with_retry(flaky, retry=RetryConfig(), what="t", sleep=lambda _: None)
    assert flaky.calls == 1


def test_timeout_bounds_a_hung_call() -> None:
    release = threading.Event()
    started = time.monotonic()
    try:
        with pytest.raises(TransientSourceError, match=r"fred X: no answer within the 0.2s"):
            call_with_timeout(lambda: release.wait(10), timeout_s=0.2, what="fred X")
    finally:
        release.set()
    assert time.monotonic() - started < 2


def test_timeout_passes_result_and_errors_through() -> None:
    assert call_with_timeout(lambda: 42, timeout_s=5, what="x") == 42
    with pytest.raises(PermanentSourceError, match="bad"):
        call_with_timeout(Flaky(PermanentSourceError("bad")), timeout_s=5, what="x")
