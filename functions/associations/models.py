"""One row per link, stored in a canonical direction (from_type sorts before to_type)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id


class Association(TenantMixin, Base):
    __tablename__ = "associations"
    __table_args__ = (
        UniqueConstraint("workspace_id", "from_type", "from_id", "to_type", "to_id", "label"),
        Index("ix_associations_to", "workspace_id", "to_type", "to_id", "from_type"),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    from_type: Mapped[str] = mapped_column(String(16), nullable=False)
    from_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    to_type: Mapped[str] = mapped_column(String(16), nullable=False)
    to_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    label: Mapped[str] = mapped_column(String(64), nullable=False, default="")  # "" = unlabelled
    is_primary: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("0"))
    created_by: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
