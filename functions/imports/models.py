"""Imports: one row per CSV import (its checkpoint included) and its rejected rows."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from layers.db.base import Base, IdColumn, JSONType, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id


class DataImport(TenantMixin, Base):
    """The checkpoint (`rows_processed`, `byte_offset`, counts) commits with each chunk's records, so a
    re-delivered job resumes after it and never applies a row twice."""

    __tablename__ = "imports"
    __table_args__ = (
        Index("ix_imports_list", "workspace_id", "id"),
        Index("ix_imports_stalled", "status", "updated_at"),  # the stalled-import sweep, across workspaces
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    object_type: Mapped[str] = mapped_column(String(16), nullable=False)  # contacts|companies|deals
    # awaiting_upload|uploaded|previewed|queued|running|completed|failed|cancelled
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    source_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    file_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    delimiter: Mapped[str | None] = mapped_column(String(1), nullable=True)
    header: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    data_offset: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # first byte after the header
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    byte_offset: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)  # where the next chunk starts
    rows_processed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # CSV records consumed
    created_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rejects_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805 - declared_attr passes the class
        # UPDATE ... WHERE version = :seen: a cancel racing a chunk's commit fails one of them.
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class ImportReject(TenantMixin, Base):
    """A rejected row, stored with its chunk (the job spans messages); the last chunk streams them to a CSV."""

    __tablename__ = "import_rejects"
    __table_args__ = (Index("ix_import_rejects_row", "workspace_id", "import_id", "row_number", unique=True),)

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    import_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    row_number: Mapped[int] = mapped_column(Integer, nullable=False)  # 1 = the first row after the header
    raw: Mapped[list[str]] = mapped_column(JSONType, nullable=False)  # the row's cells as read
    reason: Mapped[str] = mapped_column(Text, nullable=False)
