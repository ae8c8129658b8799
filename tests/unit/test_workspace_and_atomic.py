"""Workspace resolution and atomic writes: a failed write leaves the old file intact."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from finscale.io.atomic import (
    ChecksumMismatchError,
    atomic_path,
    md5_file,
    read_parquet_verified,
    write_parquet_addressed,
)
from finscale.workspace import Workspace


def test_workspace_resolves_env_then_default(tmp_path: Path) -> None:
    ws = Workspace.resolve(env={"FINSCALE_HOME": str(tmp_path / "h")})
    assert ws.home == (tmp_path / "h").resolve()
    assert ws.manifest_url == f"sqlite:///{ws.home / 'manifest.db'}"
    explicit = Workspace.resolve(tmp_path / "x", env={"FINSCALE_HOME": "/nope"})
    assert explicit.home == (tmp_path / "x").resolve()
    explicit.ensure()
    assert explicit.raw_dir.is_dir() and explicit.checkpoints_dir.is_dir()


def test_manifest_url_from_config_then_environment_then_sqlite(tmp_path: Path) -> None:
    pg = "postgresql+psycopg://finscale@db:5432/finscale"
    assert Workspace.resolve(tmp_path, env={"FINSCALE_MANIFEST_URL": pg}).manifest_url == pg
    explicit = Workspace.resolve(tmp_path, manifest_url="sqlite:///x.db",
                                 env={"FINSCALE_MANIFEST_URL": pg})
    assert explicit.manifest_url == "sqlite:///x.db"
    empty = Workspace.resolve(tmp_path, env={"FINSCALE_MANIFEST_URL": ""})
    assert empty.manifest_url == f"sqlite:///{empty.home / 'manifest.db'}"


def test_failed_atomic_write_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_addressed_parquet_roundtrip_and_tamper_detection(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]}, index=pd.DatetimeIndex(["2020-01-01", "2020-01-02"]))
    path, md5 = write_parquet_addressed(frame, tmp_path, "demo")
    assert path.name == f"demo-{md5[:12]}.parquet" and md5_file(path) == md5
    pd.testing.assert_frame_equal(read_parquet_verified(path, md5), frame, check_freq=False)
    again, md5_again = write_parquet_addressed(frame, tmp_path, "demo")
    assert (again, md5_again) == (path, md5), "identical content must map to the same file"
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ChecksumMismatchError, match="does not match manifest"):
        read_parquet_verified(path, md5)
