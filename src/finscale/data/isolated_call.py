"""Run one call in a fresh Python process that is killed when it overruns its time limit.

Why a process and not a thread: a thread cannot be killed. yfinance ignores its own timeout
when the network hangs (STACK-NOTES), so an abandoned worker thread lives on, and whatever it
holds (a lock of ours, yfinance's process-wide session and its cookie lock) blocks the next
call: one hung ticker then failed every other ticker. A child process per call shares nothing
with the next call and is killed on timeout, so a hang costs only its own call and leaves no
thread or process behind. The price is one interpreter start per call (measured in
``benchmarks/README.md``); the start is not charged to the call's time limit.

Protocol: the parent writes one pickle to the child's stdin (its ``sys.path``, the modules to
import before the clock starts, and the pickled ``(fn, args)``). The child imports those
modules, loads the call, writes one ``READY`` byte to stdout, runs ``fn(*args)`` and writes one
pickle, ``("ok", value)`` or ``("error", exception)``, then exits. The child's stdout is
reserved for that protocol; anything the call prints goes to stderr. ``fn`` must be a
module-level function and ``args`` picklable (a vendor session included).
"""

from __future__ import annotations

import importlib
import os
import pickle
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, TypeVar

from finscale.data.sources.base import PermanentSourceError, TransientSourceError

T = TypeVar("T")

READY = b"\x01"
READ_CHUNK_BYTES = 1 << 16
# Interpreter start plus the preloaded imports (yfinance + pandas: ~1.1 s on the dev VM);
# generous because a loaded machine is slow, and not part of the call's own time limit.
STARTUP_TIMEOUT_S = 60.0
KILL_WAIT_S = 10.0


def _read(stream: IO[bytes], deadline: float, limit: int | None = None) -> tuple[bytes, bool]:
    """Bytes from ``stream`` until EOF (or ``limit`` bytes); and whether it got there in time."""
    data = bytearray()
    fd = stream.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while limit is None or len(data) < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                return bytes(data), False
            chunk = os.read(fd, READ_CHUNK_BYTES if limit is None else limit - len(data))
            if not chunk:
                break
            data.extend(chunk)
    return bytes(data), True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill the child if it still runs, reap it, close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait(KILL_WAIT_S)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def call_in_subprocess(
    fn: Callable[..., T],
    *args: Any,
    timeout_s: float,
    what: str,
    hint: str = "",
    preload: Sequence[str] = (),
) -> T:
    """``fn(*args)`` in a child process, killed after ``timeout_s`` seconds of running the call.

    Raises TransientSourceError naming ``what`` and the limit (then ``hint``) on timeout, or
    when the child dies without an answer; PermanentSourceError when the child cannot even
    load the call (a broken install: retrying will not help). The call's own exception is
    re-raised as is. ``preload`` modules are imported before the clock starts.
    """
    payload = pickle.dumps((list(sys.path), list(preload), pickle.dumps((fn, args))))
    process = subprocess.Popen(  # our own interpreter and module, no shell
        [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    ready, reply, in_time = b"", b"", False
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(payload)
        process.stdin.close()
        ready, _ = _read(process.stdout, time.monotonic() + STARTUP_TIMEOUT_S, limit=1)
        if ready == READY:
            reply, in_time = _read(process.stdout, time.monotonic() + timeout_s)
    finally:
        _stop(process)
    if ready != READY:
        raise PermanentSourceError(
            f"{what}: the worker process could not load the call (exit code "
            f"{process.returncode}; its stderr says why)"
        )
    if not in_time:
        suffix = f"; {hint}" if hint else ""
        raise TransientSourceError(f"{what}: no answer within the {timeout_s:g}s timeout{suffix}")
    if not reply:
        raise TransientSourceError(
            f"{what}: the worker process exited with code {process.returncode} without an answer"
        )
    status, value = pickle.loads(reply)
    if status == "error":
        raise value
    return value  # type: ignore[no-any-return]


def _reply_bytes(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """The pickled answer to one call; an unpicklable result or error becomes a RuntimeError."""
    try:
        reply: tuple[str, Any] = ("ok", fn(*args))
    except Exception as exc:
        reply = ("error", exc)
    try:
        return pickle.dumps(reply)
    except Exception as exc:
        return pickle.dumps(("error", RuntimeError(
            f"{getattr(fn, '__name__', fn)}: its {reply[0]} reply cannot be sent back: {exc!r}"
        )))


def main() -> None:
    """The child's side of the protocol (``python -m finscale.data.isolated_call``)."""
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the call's prints go to stderr
    sys_path, preload, call = pickle.load(sys.stdin.buffer)
    # the parent's path first (pytest or a script may have extended it), then our own extras
    sys.path[:] = [*sys_path, *(entry for entry in sys.path if entry not in sys_path)]
    for module in preload:
        importlib.import_module(module)
    fn, args = pickle.loads(call)
    answer.write(READY)
    answer.flush()
    answer.write(_reply_bytes(fn, args))
    answer.close()


if __name__ == "__main__":
    main()
