"""Pipelines and stages."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Index, Integer, Numeric, String, text
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, RecordMixin, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id


class Pipeline(RecordMixin, Base):
    __tablename__ = "pipelines"
    __table_args__ = (Index("ix_pipelines_list", "workspace_id", "archived_at", "id"),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("0"))


class Stage(TenantMixin, Base):
    __tablename__ = "pipeline_stages"
    __table_args__ = (Index("ix_pipeline_stages_order", "workspace_id", "pipeline_id", "position"),)

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    pipeline_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    probability: Mapped[Decimal] = mapped_column(Numeric(5, 4), nullable=False)  # 0..1, exact
    kind: Mapped[str] = mapped_column(String(8), nullable=False)  # open | won | lost
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
