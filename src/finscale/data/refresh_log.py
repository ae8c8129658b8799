"""When each raw series was last checked against its source, and what came of it.

The manifest records versions, so an unchanged nightly check leaves no trace there. This
log records every check (unchanged ones included) in a small ``refresh_log`` table of the
same database as the manifest (``workspace.manifest_url``: SQLite or PostgreSQL), so
``finscale data status`` can show that last night's refresh ran and what it found.

It lives in the data area, with its own table metadata, because it is the data service's
record of its own work, not an artifact: the manifest schema stays as it is. The engine
comes from ``manifest.store.make_engine``, so SQLite gets the same WAL mode, busy timeout
and immediate write transactions as the manifest (two refreshing processes queue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from finscale.manifest.store import create_schema, make_engine

REASON_MAX_CHARS = 1000


class _LogBase(DeclarativeBase):
    """Declarative base of the refresh log (separate from the manifest's tables)."""


class RefreshCheckRow(_LogBase):
    """One check of one series: when, against which source, and the outcome."""

    __tablename__ = "refresh_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20))
    rows_added: Mapped[int] = mapped_column(Integer)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(REASON_MAX_CHARS))
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class RefreshCheck:
    """An immutable view of one logged check."""

    name: str
    source: str
    status: str
    rows_added: int
    version: int | None
    reason: str
    checked_at: datetime


def _to_check(row: RefreshCheckRow) -> RefreshCheck:
    return RefreshCheck(row.name, row.source, row.status, row.rows_added, row.version,
                        row.reason, row.checked_at)


class RefreshLog:
    """Append checks; read the latest check per series."""

    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)
        create_schema(self._engine, _LogBase.metadata)  # safe when refreshes start at once
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    def close(self) -> None:
        self._engine.dispose()

    def record(
        self, *, name: str, source: str, status: str, rows_added: int, version: int | None,
        reason: str, checked_at: datetime | None = None,
    ) -> None:
        """Append one check (``checked_at`` defaults to now, UTC)."""
        with self._sessions.begin() as session:
            session.add(RefreshCheckRow(
                name=name, source=source, status=status, rows_added=rows_added,
                version=version, reason=reason[:REASON_MAX_CHARS],
                checked_at=checked_at or datetime.now(UTC),
            ))

    def last_checks(self) -> dict[str, RefreshCheck]:
        """The newest check of every series, by artifact name."""
        newest = (select(RefreshCheckRow.name, func.max(RefreshCheckRow.id).label("id"))
                  .group_by(RefreshCheckRow.name).subquery())
        stmt = select(RefreshCheckRow).join(newest, RefreshCheckRow.id == newest.c.id)
        with self._sessions() as session:
            return {row.name: _to_check(row) for row in session.scalars(stmt)}

    def history(self, name: str) -> list[RefreshCheck]:
        """Every check of ``name``, oldest first."""
        stmt = (select(RefreshCheckRow).where(RefreshCheckRow.name == name)
                .order_by(RefreshCheckRow.id))
        with self._sessions() as session:
            return [_to_check(row) for row in session.scalars(stmt)]
