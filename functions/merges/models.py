"""What a merge did, so it can be undone."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id


class Merge(TenantMixin, Base):
    __tablename__ = "merges"
    __table_args__ = (Index("ix_merges_records", "workspace_id", "object_type", "survivor_id"),)

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    object_type: Mapped[str] = mapped_column(String(16), nullable=False)
    survivor_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    merged_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    survivor_before: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    moved: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)  # what moved, to move it back
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
