"""SQLAlchemy 2 ORM tables of the manifest: artifact versions and their parents."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of the manifest schema."""


class ArtifactLink(Base):
    """Lineage: ``child`` was derived from ``parent``."""

    __tablename__ = "artifact_parents"

    child_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), primary_key=True)


class ArtifactRow(Base):
    """One stored version of a named artifact."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_artifact_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(50), index=True)
    path: Mapped[str] = mapped_column(String(1000))
    md5: Mapped[str] = mapped_column(String(32))
    rows: Mapped[int] = mapped_column(Integer)
    first_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    last_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    source: Mapped[str] = mapped_column(String(200))
    config_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    parents: Mapped[list[ArtifactRow]] = relationship(
        secondary="artifact_parents",
        primaryjoin="ArtifactRow.id == ArtifactLink.child_id",
        secondaryjoin="ArtifactRow.id == ArtifactLink.parent_id",
        lazy="selectin",
        viewonly=True,
    )
