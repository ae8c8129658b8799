"""One writer per run identity: an exclusive lock held for the whole of a training run.

Two processes training the same identity would interleave checkpoints and both finish an
MLflow run. The lock is an ``flock`` on ``<workspace>/locks/<identity>.lock``: the kernel drops
it when the holder dies, so a SIGKILLed run never leaves a stale lock behind. When the
manifest is on PostgreSQL (several hosts sharing one store) a session-level advisory lock
on the identity is taken as well, so a second host refuses too; it also ends with the
holder's connection.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

POSTGRES_SCHEMES = ("postgresql",)
HOLDER_BYTES = 4096


class RunLockedError(RuntimeError):
    """Another live process is training this run identity."""


def _holder() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _describe(raw: bytes) -> str:
    try:
        holder = json.loads(raw.decode() or "{}")
        return f"pid {holder['pid']} on {holder['host']} since {holder['since']}"
    except (ValueError, KeyError):
        return "another process"


def _advisory_key(identity: str) -> int:
    """A signed 64-bit key for ``pg_try_advisory_lock`` derived from the identity."""
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big", signed=True)


@contextmanager
def _postgres_lock(url: str, identity: str) -> Iterator[None]:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(url, poolclass=NullPool)
    key = _advisory_key(identity)
    try:
        with engine.connect() as conn:
            taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if not taken:
                raise RunLockedError(
                    f"run {identity} is being trained by another host (PostgreSQL advisory "
                    "lock on the shared manifest); wait for it or stop it")
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()


@contextmanager
def run_identity_lock(
    lock_path: Path, identity: str, store_url: str | None = None
) -> Iterator[None]:
    """Hold the identity's lock for the block; ``RunLockedError`` names the holder."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.pread(fd, HOLDER_BYTES, 0))
            raise RunLockedError(
                f"run {identity} is already being trained by {holder}; wait for it to end "
                "or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder()).encode(), 0)
        remote = (_postgres_lock(store_url, identity)
                  if store_url and store_url.startswith(POSTGRES_SCHEMES) else nullcontext())
        with remote:
            yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
