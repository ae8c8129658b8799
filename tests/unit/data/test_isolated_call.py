"""A call in its own child process: its answer or its exception comes back, a hang is killed
at the time limit and leaves no thread or process behind, a crash is a transient failure."""

from __future__ import annotations

import operator
import os
import threading
import time

import pytest

from finscale.data.isolated_call import call_in_subprocess
from finscale.data.sources.base import PermanentSourceError, TransientSourceError
from tests.support.processes import isolated_call_children

# A hang is given 60 s to finish; killed at 1 s, the call returns long before.
HANG_S = 60.0
BOUND_S = 15.0  # 1 s limit + interpreter start, generous for a loaded 2-core machine


def test_value_and_exception_come_back() -> None:
    assert call_in_subprocess(operator.add, 2, 3, timeout_s=30, what="add") == 5
    with pytest.raises(ZeroDivisionError):
        call_in_subprocess(operator.truediv, 1, 0, timeout_s=30, what="divide")


def test_hung_call_is_killed_at_its_limit_and_leaves_nothing_behind() -> None:
    threads_before = set(threading.enumerate())
    started = time.monotonic()

    with pytest.raises(TransientSourceError, match=r"sleeper: no answer within the 1s timeout; h"):
        call_in_subprocess(time.sleep, HANG_S, timeout_s=1.0, what="sleeper", hint="h")

    assert time.monotonic() - started < BOUND_S
    assert set(threading.enumerate()) == threads_before
    assert isolated_call_children() == []


def test_a_child_that_dies_without_answering_is_a_transient_failure() -> None:
    with pytest.raises(TransientSourceError, match=r"crasher: .*exited with code 3 without an"):
        call_in_subprocess(os._exit, 3, timeout_s=30, what="crasher")


def test_a_call_the_child_cannot_load_is_permanent() -> None:
    with pytest.raises(PermanentSourceError, match=r"loader: .*could not load the call"):
        call_in_subprocess(operator.add, 1, 1, timeout_s=30, what="loader",
                           preload=("finscale_no_such_module",))
