"""Store and load DataFrames as manifest-registered Parquet artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from finscale.io.atomic import read_parquet_verified, write_parquet_addressed
from finscale.manifest.store import ArtifactRecord, Manifest


@dataclass(frozen=True)
class StoredArtifact:
    """What ``save_frame`` did: the record, and whether it made a new version."""

    record: ArtifactRecord
    created: bool


def date_span(frame: pd.DataFrame) -> tuple[date | None, date | None]:
    """First and last date of a frame with a DatetimeIndex (None otherwise or when empty)."""
    if frame.empty or not isinstance(frame.index, pd.DatetimeIndex):
        return None, None
    return frame.index.min().date(), frame.index.max().date()


def save_frame(
    manifest: Manifest,
    frame: pd.DataFrame,
    *,
    name: str,
    kind: str,
    directory: Path,
    source: str,
    config_hash: str,
    parents: Sequence[int] = (),
    meta: dict[str, Any] | None = None,
) -> StoredArtifact:
    """Write ``frame`` atomically and register it, unless the latest version is identical.

    The file is renamed into place before the manifest row is committed, so a reader that
    trusts the manifest never sees a half-written file. "Identical" (same MD5 and parents)
    is decided inside the registering transaction, so two writers storing the same frame at
    once make one version. The file is content-addressed: an unchanged frame rewrites
    nothing new.
    """
    path, md5 = write_parquet_addressed(frame, directory, name.replace("/", "_"))
    first, last = date_span(frame)
    registration = manifest.register_version(
        name=name, kind=kind, path=path, md5=md5, rows=len(frame), source=source,
        config_hash=config_hash, first_date=first, last_date=last, parents=parents, meta=meta,
    )
    return StoredArtifact(registration.record, created=registration.created)


def load_frame(manifest: Manifest, record: ArtifactRecord) -> pd.DataFrame:
    """Read an artifact's Parquet after checking its MD5 against the manifest."""
    return read_parquet_verified(manifest.absolute(record), record.md5)


def load_latest(manifest: Manifest, name: str) -> tuple[ArtifactRecord, pd.DataFrame]:
    """The newest version of ``name`` and its verified frame; KeyError if none."""
    record = manifest.latest(name)
    if record is None:
        raise KeyError(f"manifest has no artifact named '{name}'")
    return record, load_frame(manifest, record)
