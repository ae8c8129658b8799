"""Atomic writes (temp file, fsync, rename, fsync dir) and MD5 checksums.

Temp files carry their writer's PID and host (``finscale.io.temp_files``), so the ones a
killed writer leaves behind can be told apart from a live writer's and removed at the next
workspace start.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from finscale.io.temp_files import TEMP_SUFFIX, temp_prefix

CHUNK_BYTES = 1 << 20


class ChecksumMismatchError(RuntimeError):
    """A stored file's MD5 differs from the manifest: never silently re-used.

    ``path`` is the damaged (or missing) file, so a caller can say how to repair it.
    """

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def md5_file(path: Path) -> str:
    """Hex MD5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _temp_file(directory: Path, prefix: str) -> Iterator[Path]:
    """A fresh temp file in ``directory``, removed afterwards unless it was renamed away."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(prefix), suffix=TEMP_SUFFIX,
                                    dir=directory)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
    finally:
        if tmp.exists():
            tmp.unlink()


def _commit(tmp: Path, target: Path) -> None:
    """fsync the finished temp file, rename it over ``target``, fsync the folder."""
    with tmp.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    _fsync_dir(target.parent)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success fsync it and rename over ``target``.

    On any exception the temp file is removed and ``target`` is untouched.
    """
    with _temp_file(target.parent, target.name) as tmp:
        yield tmp
        _commit(tmp, target)


def read_parquet_verified(path: Path, expected_md5: str) -> pd.DataFrame:
    """Read Parquet only if its MD5 matches the manifest's."""
    if not path.is_file():
        raise ChecksumMismatchError(
            f"{path}: file is missing (manifest expects md5 {expected_md5})", path=path
        )
    actual = md5_file(path)
    if actual != expected_md5:
        raise ChecksumMismatchError(
            f"{path}: md5 {actual} does not match manifest md5 {expected_md5}", path=path
        )
    return pd.read_parquet(path, engine="pyarrow")


def write_parquet_addressed(frame: pd.DataFrame, directory: Path, stem: str) -> tuple[Path, str]:
    """Write ``frame`` atomically to ``directory/<stem>-<md5[:12]>.parquet``.

    The name carries the content hash, so each version keeps its own file and an older
    version is never overwritten. Returns (path, md5).
    """
    with _temp_file(directory, stem) as tmp:
        frame.to_parquet(tmp, engine="pyarrow", index=True, compression="zstd")
        digest = md5_file(tmp)
        target = directory / f"{stem}-{digest[:12]}.parquet"
        _commit(tmp, target)
    return target, digest
