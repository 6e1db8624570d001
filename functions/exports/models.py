"""Exports: one row per export request."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id


class DataExport(TenantMixin, Base):
    __tablename__ = "exports"
    __table_args__ = (
        Index("ix_exports_list", "workspace_id", "id"),
        Index("ix_exports_stalled", "status", "started_at"),  # the stalled-export sweep, across workspaces
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    object_type: Mapped[str] = mapped_column(String(16), nullable=False)
    format: Mapped[str] = mapped_column(String(8), nullable=False)  # csv|jsonl
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # queued|running|completed|failed
    # {filter_groups, query, properties}, as validated when the export was asked for
    request: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    # The requester's record visibility (None: the whole workspace): the job sees what they would.
    visible_owner_ids: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    row_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    file_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
