"""The manifest on SQLite and PostgreSQL: register, latest, history, verify, lineage, and
concurrent registration from two processes."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from finscale.io.atomic import md5_file
from finscale.manifest.artifacts import load_latest, save_frame
from finscale.manifest.store import Manifest

REGISTRATIONS_PER_PROCESS = 50
SHARED_NAME = "shared/artifact"


def _file(root: Path, name: str, content: str) -> tuple[Path, str]:
    path = root / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path, md5_file(path)


def test_register_latest_history_and_lineage(manifest_url: str, tmp_path: Path) -> None:
    manifest = Manifest(manifest_url, tmp_path)
    path1, md5_1 = _file(tmp_path, "a1", "one")
    path2, md5_2 = _file(tmp_path, "a2", "two")
    first = manifest.register(name="raw/a", kind="raw", path=path1, md5=md5_1, rows=1,
                              source="csv", config_hash="h1", first_date=date(2020, 1, 2),
                              last_date=date(2020, 1, 3), meta={"k": "v"})
    second = manifest.register(name="raw/a", kind="raw", path=path2, md5=md5_2, rows=2,
                               source="csv", config_hash="h2")
    child_path, child_md5 = _file(tmp_path, "b", "derived")
    child = manifest.register(name="feat/b", kind="features", path=child_path, md5=child_md5,
                              rows=2, source="derived", config_hash="h3",
                              parents=[second.id, first.id])

    assert (first.version, second.version, child.version) == (1, 2, 1)
    assert first.path == "a1.txt"  # stored relative to the root
    assert manifest.latest("raw/a") == second
    assert manifest.history("raw/a") == [first, second]
    assert manifest.latest("nothing") is None
    assert child.parent_ids == tuple(sorted([first.id, second.id]))
    assert manifest.get(first.id).meta == {"k": "v"}
    assert first.first_date == date(2020, 1, 2)
    assert [r.name for r in manifest.all_latest()] == ["feat/b", "raw/a"]
    assert [r.name for r in manifest.all_latest(kind="raw")] == ["raw/a"]
    assert all(r.ok for r in manifest.verify())
    manifest.close()


def test_tampered_or_missing_file_fails_verify(manifest_url: str, tmp_path: Path) -> None:
    manifest = Manifest(manifest_url, tmp_path)
    frame = pd.DataFrame({"x": [1.0, 2.0]}, index=pd.DatetimeIndex(["2024-01-02", "2024-01-03"]))
    stored = save_frame(manifest, frame, name="raw/x", kind="raw", directory=tmp_path / "raw",
                        source="test", config_hash="h")
    other = save_frame(manifest, frame * 2, name="raw/y", kind="raw", directory=tmp_path / "raw",
                       source="test", config_hash="h")
    assert stored.created and all(r.ok for r in manifest.verify())

    path = manifest.absolute(stored.record)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    manifest.absolute(other.record).unlink()
    results = {r.record.name: r for r in manifest.verify()}

    assert not results["raw/x"].ok and "md5" in results["raw/x"].reason
    assert not results["raw/y"].ok and "missing" in results["raw/y"].reason
    with pytest.raises(RuntimeError, match="does not match manifest md5"):
        load_latest(manifest, "raw/x")
    manifest.close()


def test_identical_frame_makes_no_new_version(manifest_url: str, tmp_path: Path) -> None:
    manifest = Manifest(manifest_url, tmp_path)
    frame = pd.DataFrame({"x": [1.0]}, index=pd.DatetimeIndex(["2024-01-02"]))
    kwargs = {"name": "raw/x", "kind": "raw", "directory": tmp_path, "source": "t",
              "config_hash": "h"}
    assert save_frame(manifest, frame, **kwargs).created
    again = save_frame(manifest, frame, **kwargs)
    assert not again.created and again.record.version == 1
    assert len(manifest.history("raw/x")) == 1
    manifest.close()


WORKER_SCRIPT = """
import sys
import time
from pathlib import Path
from finscale.io.atomic import md5_file
from finscale.manifest.store import Manifest

url, root, worker, shared = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[5]
count = int(sys.argv[4])
manifest = Manifest(url, root)
(root / f"ready-{worker}").touch()
while len(list(root.glob("ready-*"))) < 2:  # start together, so the writes really overlap
    time.sleep(0.01)
for i in range(count):
    path = root / f"w{worker}-{i}.txt"
    path.write_text(f"{worker}-{i}")
    for name in (shared, f"own/{worker}"):
        manifest.register(name=name, kind="test", path=path, md5=md5_file(path), rows=i,
                          source=f"worker{worker}", config_hash="h")
manifest.close()
"""


def test_two_processes_registering_at_once_lose_nothing(
    manifest_url: str, tmp_path: Path
) -> None:
    Manifest(manifest_url, tmp_path).close()  # schema created once, before the workers
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, manifest_url, str(tmp_path),
                          str(w), str(REGISTRATIONS_PER_PROCESS), SHARED_NAME])
        for w in (1, 2)
    ]
    assert [process.wait(timeout=180) for process in workers] == [0, 0]

    manifest = Manifest(manifest_url, tmp_path)
    shared = manifest.history(SHARED_NAME)
    total = 2 * REGISTRATIONS_PER_PROCESS
    assert [r.version for r in shared] == list(range(1, total + 1))
    assert len({r.id for r in shared}) == total
    for worker in (1, 2):
        own = manifest.history(f"own/{worker}")
        assert [r.version for r in own] == list(range(1, REGISTRATIONS_PER_PROCESS + 1))
        assert sum(r.source == f"worker{worker}" for r in shared) == REGISTRATIONS_PER_PROCESS
    assert len(manifest.all_versions()) == 2 * total
    assert all(r.ok for r in manifest.verify())
    manifest.close()
