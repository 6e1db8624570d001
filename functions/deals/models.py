"""Deals and their stage changes."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, Index, Numeric, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, OwnedMixin, RecordMixin, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id

CURRENCY = String(3).with_variant(mysql.CHAR(3, charset="ascii", collation="ascii_bin"), "mysql", "mariadb")


class Deal(RecordMixin, OwnedMixin, Base):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_board", "workspace_id", "pipeline_id", "stage_id", "archived_at", "id"),
        Index("ix_deals_list", "workspace_id", "archived_at", "id"),
        Index("ix_deals_close", "workspace_id", "expected_close_date"),
        Index("ix_deals_closed", "workspace_id", "closed_at"),
        Index("ix_deals_owner", "workspace_id", "owner_id"),
        Index("ix_deals_company", "workspace_id", "company_id"),
        Index("ix_deals_fulltext", "name", mysql_prefix="FULLTEXT"),
    )

    name: Mapped[str] = mapped_column(String(255), nullable=False)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(19, 4), nullable=True)  # exact, never a float
    currency: Mapped[str | None] = mapped_column(CURRENCY, nullable=True)  # ISO 4217
    pipeline_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    stage_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    expected_close_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lost_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    company_id: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    custom: Mapped[dict[str, object]] = mapped_column(JSONType, nullable=False, default=dict)
    stage_entered_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DealStageChange(TenantMixin, Base):
    __tablename__ = "deal_stage_changes"
    __table_args__ = (Index("ix_deal_stage_changes_deal", "workspace_id", "deal_id", "id"),)

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    pipeline_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    from_stage_id: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)
    to_stage_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
