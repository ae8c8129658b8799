"""The manifest: register, look up and verify artifact versions (SQLite or any SQLAlchemy URL).

Concurrent writers, e.g. two refreshes started at once on an empty PostgreSQL manifest:

- Version assignment is atomic. SQLite runs in WAL mode with a busy timeout and every write
  transaction starts with ``BEGIN IMMEDIATE``, so writers queue. Elsewhere the unique
  (name, version) constraint makes the second of two writers that picked the same version
  fail; it retries in a new transaction and sees the first one's row.
- Unchanged content is never a new version: "is the latest version of this name the same
  file (MD5) with the same parents?" is asked inside that same transaction, so two writers
  storing identical content register it once.
- Schema creation is idempotent under races (``create_schema``): on PostgreSQL it runs under
  a transaction-scoped advisory lock, because two concurrent ``CREATE TABLE`` of the same
  table crash one side with a unique violation in the catalogue.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from finscale.io.atomic import md5_file
from finscale.manifest.schema import ArtifactLink, ArtifactRow, Base
from finscale.workspace import Workspace

WAL_RETRY_S = 0.05  # between attempts to switch a fresh file to WAL
SQLITE_BUSY_TIMEOUT_MS = 30_000
REGISTER_ATTEMPTS = 20
# pg_advisory_xact_lock key serialising schema creation (any fixed int64; "finscale" in ASCII)
SCHEMA_LOCK_KEY = int.from_bytes(b"finscale", "big")


@dataclass(frozen=True)
class ArtifactRecord:
    """An immutable view of one artifact version."""

    id: int
    name: str
    version: int
    kind: str
    path: str
    md5: str
    rows: int
    first_date: date | None
    last_date: date | None
    source: str
    config_hash: str
    created_at: datetime
    parent_ids: tuple[int, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Registration:
    """What ``Manifest.register`` did: the version, and whether it is a new one."""

    record: ArtifactRecord
    created: bool


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking one version's file against its recorded MD5."""

    record: ArtifactRecord
    ok: bool
    reason: str


def _to_record(row: ArtifactRow) -> ArtifactRecord:
    return ArtifactRecord(
        id=row.id,
        name=row.name,
        version=row.version,
        kind=row.kind,
        path=row.path,
        md5=row.md5,
        rows=row.rows,
        first_date=row.first_date,
        last_date=row.last_date,
        source=row.source,
        config_hash=row.config_hash,
        created_at=row.created_at,
        parent_ids=tuple(sorted(p.id for p in row.parents)),
        meta=dict(row.meta or {}),
    )


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL. Two first users of a fresh file may switch it at the same
    instant, and SQLite then answers "database is locked" at once (a journal-mode change
    does not wait on the busy handler), so retry within the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_RETRY_S)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # let SQLAlchemy, not the driver, issue BEGIN (so it can be IMMEDIATE)
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_schema(engine: Engine, metadata: MetaData) -> None:
    """Create ``metadata``'s missing tables; safe when several processes do it at once.

    On PostgreSQL the check-then-create runs under an advisory lock held until commit, so the
    second process waits, then finds the tables. SQLite needs none: ``BEGIN IMMEDIATE``
    already serialises the transaction ``create_all`` runs in.
    """
    if engine.dialect.name != "postgresql":
        metadata.create_all(engine)
        return
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        metadata.create_all(connection)


def make_engine(url: str) -> Engine:
    """An engine for the manifest URL (SQLite gets WAL, busy timeout, immediate writes)."""
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True)


class Manifest:
    """Artifact versions with lineage; paths are stored relative to ``root``."""

    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.root = root
        self._engine = make_engine(url)
        create_schema(self._engine, Base.metadata)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    @classmethod
    def for_workspace(cls, workspace: Workspace) -> Manifest:
        """The manifest of a workspace (its URL; paths relative to its home)."""
        return cls(workspace.manifest_url, workspace.home)

    def close(self) -> None:
        self._engine.dispose()

    def absolute(self, record: ArtifactRecord) -> Path:
        path = Path(record.path)
        return path if path.is_absolute() else self.root / path

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path.resolve())

    def register(self, **fields: Any) -> ArtifactRecord:
        """``register_version``'s record: the new version, or the latest if unchanged."""
        return self.register_version(**fields).record

    def register_version(
        self,
        *,
        name: str,
        kind: str,
        path: Path,
        md5: str,
        rows: int,
        source: str,
        config_hash: str,
        first_date: date | None = None,
        last_date: date | None = None,
        parents: Sequence[int] = (),
        meta: dict[str, Any] | None = None,
    ) -> Registration:
        """Add the next version of ``name``, unless the latest is the same content.

        "Same content" is the same MD5 and the same parents; then the latest version is
        returned with ``created`` False. Atomic against concurrent writers (module docstring).
        """
        for attempt in range(REGISTER_ATTEMPTS):
            try:
                return self._insert(
                    name, kind, self._relative(path), md5, rows, source, config_hash,
                    first_date, last_date, tuple(sorted(set(parents))), meta or {},
                )
            except (IntegrityError, OperationalError):
                if attempt == REGISTER_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _insert(
        self, name: str, kind: str, path: str, md5: str, rows: int, source: str,
        config_hash: str, first_date: date | None, last_date: date | None,
        parents: tuple[int, ...], meta: dict[str, Any],
    ) -> Registration:
        with self._sessions.begin() as session:
            latest = session.scalars(
                select(ArtifactRow).where(ArtifactRow.name == name)
                .order_by(ArtifactRow.version.desc()).limit(1)
            ).first()
            if latest is not None and latest.md5 == md5 \
                    and tuple(sorted(p.id for p in latest.parents)) == parents:
                return Registration(_to_record(latest), created=False)
            row = ArtifactRow(
                name=name, version=(latest.version if latest else 0) + 1, kind=kind,
                path=path, md5=md5, rows=rows, first_date=first_date, last_date=last_date,
                source=source, config_hash=config_hash, created_at=datetime.now(UTC),
                meta=meta,
            )
            session.add(row)
            session.flush()
            for parent_id in parents:
                session.add(ArtifactLink(child_id=row.id, parent_id=parent_id))
            session.flush()
            session.refresh(row)
            return Registration(_to_record(row), created=True)

    def _query(self, session: Session, name: str | None = None) -> list[ArtifactRow]:
        stmt = select(ArtifactRow).order_by(ArtifactRow.name, ArtifactRow.version)
        if name is not None:
            stmt = stmt.where(ArtifactRow.name == name)
        return list(session.scalars(stmt))

    def get(self, artifact_id: int) -> ArtifactRecord:
        with self._sessions() as session:
            row = session.get(ArtifactRow, artifact_id)
            if row is None:
                raise KeyError(f"manifest has no artifact with id {artifact_id}")
            return _to_record(row)

    def history(self, name: str) -> list[ArtifactRecord]:
        """All versions of ``name``, oldest first."""
        with self._sessions() as session:
            return [_to_record(r) for r in self._query(session, name)]

    def latest(self, name: str) -> ArtifactRecord | None:
        """The newest version of ``name``, or None (one row read, not the whole history)."""
        stmt = (select(ArtifactRow).where(ArtifactRow.name == name)
                .order_by(ArtifactRow.version.desc()).limit(1))
        with self._sessions() as session:
            row = session.scalars(stmt).first()
            return None if row is None else _to_record(row)

    def all_latest(self, kind: str | None = None) -> list[ArtifactRecord]:
        """The newest version of every name (optionally of one kind), sorted by name."""
        newest = (select(ArtifactRow.name, func.max(ArtifactRow.version).label("version"))
                  .group_by(ArtifactRow.name).subquery())
        stmt = (select(ArtifactRow)
                .join(newest, (ArtifactRow.name == newest.c.name)
                      & (ArtifactRow.version == newest.c.version))
                .order_by(ArtifactRow.name))
        if kind is not None:
            stmt = stmt.where(ArtifactRow.kind == kind)
        with self._sessions() as session:
            return [_to_record(r) for r in session.scalars(stmt)]

    def all_versions(self) -> list[ArtifactRecord]:
        with self._sessions() as session:
            return [_to_record(r) for r in self._query(session)]

    def verify(self, records: Iterable[ArtifactRecord] | None = None) -> list[VerifyResult]:
        """Check that each version's file exists and its MD5 matches (all when None)."""
        results = []
        for record in self.all_versions() if records is None else records:
            path = self.absolute(record)
            if not path.is_file():
                results.append(VerifyResult(record, False, f"missing file {path}"))
                continue
            actual = md5_file(path)
            ok = actual == record.md5
            reason = "ok" if ok else f"md5 {actual} != manifest {record.md5}"
            results.append(VerifyResult(record, ok, reason))
        return results
