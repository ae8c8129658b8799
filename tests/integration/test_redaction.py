"""No credential leaves the process: a run whose store URLs carry a sentinel password writes
it into no file (MLflow store, artifacts, checkpoints), no manifest row, no log line and no
result object."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import torch

from finscale.config import load_config
from finscale.config.redact import REDACTED, redact_data, redact_text
from finscale.training.run import train_run
from finscale.workspace import Workspace
from tests.support.raw_workspace import fill_raw_workspace

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
USERINFO_SENTINEL = "Sentinel-Userinfo-5f3a9c"
QUERY_SENTINEL = "Sentinel-Query-8e21d7"


def test_url_credentials_are_masked_in_both_forms() -> None:
    assert redact_text("postgresql+psycopg://me:hunter2@db:5432/x") == (
        f"postgresql+psycopg://me:{REDACTED}@db:5432/x")
    assert redact_text("postgresql://db/x?sslmode=require&password=hunter2&user=me") == (
        f"postgresql://db/x?sslmode=require&password={REDACTED}&user=me")
    assert redact_text("https://api/fred?series_id=DGS10&api_key=abc123") == (
        f"https://api/fred?series_id=DGS10&api_key={REDACTED}")
    assert redact_text("host=db password=hunter2 user=me") == f"host=db password={REDACTED} user=me"
    assert redact_text("sqlite:////tmp/ws/mlflow.db") == "sqlite:////tmp/ws/mlflow.db"
    nested = redact_data({"a": {"token": "t0k", "url": "x://u:p@h"}, "n": [1, "y://u:q@h"]})
    assert nested == {"a": {"token": REDACTED, "url": f"x://u:{REDACTED}@h"},
                      "n": [1, f"y://u:{REDACTED}@h"]}


@pytest.fixture()
def pg_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema; the URL carries a password in both forms (trust auth
    ignores them, so the run really connects with them)."""
    schema = f"redact_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (f"postgresql+psycopg://postgres:{USERINFO_SENTINEL}@127.0.0.1:5432/test"
               f"?options=-csearch_path%3D{schema}&password={QUERY_SENTINEL}"), schema
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _files_containing(root: Path, needles: tuple[bytes, ...]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {n!r}" for n in needles if n in data]
    return found


def _manifest_rows(schema: str) -> str:
    admin = sa.create_engine(PG_ADMIN)
    try:
        with admin.connect() as conn:
            tables = conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema}).scalars().all()
            rows = [str(conn.execute(sa.text(f'SELECT * FROM "{schema}"."{t}"')).all())
                    for t in tables]
    finally:
        admin.dispose()
    assert tables, "the run wrote no manifest table: the check would see nothing"
    return "\n".join(rows)


@pytest.mark.slow
def test_a_run_writes_no_password_anywhere(
    tmp_path: Path, shared_data_dir: Path, pg_schema_url: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    torch.set_num_threads(1)
    url, schema = pg_schema_url
    workspace = Workspace.resolve(tmp_path / "ws", manifest_url=url).ensure()
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml", overrides=[
        "model.budget=10k", "dataset.context=32", "training.epochs=1", "training.device=cpu",
        "thermal.sensor=none", f"workspace.manifest_url={url}"])
    caplog.set_level(logging.DEBUG)
    result = train_run(config, workspace)
    needles = (USERINFO_SENTINEL.encode(), QUERY_SENTINEL.encode())
    assert (workspace.home / "mlflow.db").is_file() and any(workspace.checkpoints_dir.rglob("*.pt"))
    assert _files_containing(workspace.home, needles) == []
    rows = _manifest_rows(schema)
    assert USERINFO_SENTINEL not in rows and QUERY_SENTINEL not in rows
    assert USERINFO_SENTINEL not in caplog.text and QUERY_SENTINEL not in caplog.text
    assert USERINFO_SENTINEL not in repr(result) and QUERY_SENTINEL not in repr(result)
