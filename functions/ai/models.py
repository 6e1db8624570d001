"""AI settings per workspace and the record of every AI run (inputs by reference, never their text)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id


class AISettings(TenantMixin, Base):
    __tablename__ = "ai_settings"
    __table_args__ = (UniqueConstraint("workspace_id", name="uq_ai_settings_workspace"),)

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    # Enabled providers and models, [{provider, model}]; empty: local only.
    providers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False, default=list)
    primary_provider: Mapped[str] = mapped_column(String(16), nullable=False, default="local")
    monthly_budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 4), nullable=True)
    budget_currency: Mapped[str] = mapped_column(String(3), nullable=False, default="USD")
    auto_apply: Mapped[dict[str, bool]] = mapped_column(JSONType, nullable=False, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class AIRun(TenantMixin, Base):
    __tablename__ = "ai_runs"
    __table_args__ = (
        Index("ix_ai_runs_list", "workspace_id", "id"),
        Index("ix_ai_runs_requester", "workspace_id", "requested_by_id", "id"),
        Index("ix_ai_runs_month", "workspace_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    feature: Mapped[str] = mapped_column(String(32), nullable=False)  # summary|lead_score|next_action|...
    requested_by_type: Mapped[str] = mapped_column(String(16), nullable=False)
    requested_by_id: Mapped[str] = mapped_column(String(64), nullable=False)
    object_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    record_id: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False, default=list)  # refs + fields
    provider: Mapped[str | None] = mapped_column(String(16), nullable=True)
    model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prompt_version: Mapped[str] = mapped_column(String(32), nullable=False)
    tokens_in: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cost: Mapped[Decimal] = mapped_column(Numeric(14, 6), nullable=False, default=Decimal(0))
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # queued|running|succeeded|failed|applied
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    dropped_citations: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    raw_text: Mapped[str | None] = mapped_column(Text, nullable=True)  # failed runs only, for inspection
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    applied_by_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    applied_by_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    applied: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)  # what apply wrote
