"""Deals and their stage changes."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, Index, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, Money, OwnedMixin, RecordMixin, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id

_CONTACT_IDS, _PRIMARY_CONTACT_ID = "_deal_contact_ids", "_deal_primary_contact_id"
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
        # Covers the pipeline summary and a pipeline's forecast (functions/deals/reports.py), visibility
        # included: GROUP BY stage and currency over 100,000 deals reads the index, not the rows.
        Index("ix_deals_summary", "workspace_id", "pipeline_id", "archived_at", "stage_id", "currency", "owner_id",
              "amount", "expected_close_date"),
        Index("ix_deals_fulltext", "name", mysql_prefix="FULLTEXT"),
    )

    name: Mapped[str] = mapped_column(String(255), nullable=False)
    amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)  # exact, never a float
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
    # The last `deal.stale` notice: when it went out, and the last-touch moment it was about
    # (coalesce(last_activity_at, stage_entered_at)). A later touch starts a new staleness period.
    stale_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    stale_notified_for: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    # A deal's contacts are associations (functions/associations), not columns. The deals service puts
    # them on the row when it loads it and writes changes back, so the record machinery (change
    # detection, history, events, the read body) handles them like any other field.
    @property
    def contact_ids(self) -> list[str]:
        return list(self._contacts()[0])

    @contact_ids.setter
    def contact_ids(self, value: list[str]) -> None:
        self.__dict__[_CONTACT_IDS] = sorted(value)

    @property
    def primary_contact_id(self) -> str | None:
        return self._contacts()[1]

    @primary_contact_id.setter
    def primary_contact_id(self, value: str | None) -> None:
        self.__dict__[_PRIMARY_CONTACT_ID] = value

    @property
    def contacts_loaded(self) -> bool:
        return _CONTACT_IDS in self.__dict__

    def _contacts(self) -> tuple[list[str], str | None]:
        if not self.contacts_loaded:
            raise RuntimeError(f"the contacts of deal {self.id} were not loaded (see functions/deals/service.py)")
        return self.__dict__[_CONTACT_IDS], self.__dict__.get(_PRIMARY_CONTACT_ID)


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
