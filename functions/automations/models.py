"""Automation rules and the record of every run."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, RecordMixin, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id


class AutomationRule(RecordMixin, Base):
    __tablename__ = "automation_rules"
    __table_args__ = (
        Index("ix_automation_rules_list", "workspace_id", "archived_at", "id"),
        # The evaluator's look-up: a workspace's active rules of one object type.
        Index("ix_automation_rules_active", "workspace_id", "status", "object_type"),
        # The schedule sweep runs across workspaces: due schedule rules, oldest first.
        Index("ix_automation_rules_due", "trigger_type", "status", "next_run_at"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    object_type: Mapped[str] = mapped_column(String(16), nullable=False)  # contacts|companies|deals|activities
    trigger_type: Mapped[str] = mapped_column(String(32), nullable=False)  # a copy of trigger["type"], queried
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    conditions: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")  # active|paused
    paused_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_status: Mapped[str | None] = mapped_column(String(16), nullable=True)


class AutomationRun(TenantMixin, Base):
    """One rule met by one event (or one record of a scheduled firing): what triggered it, each step's
    outcome and the error, kept whether the actions committed or not."""

    __tablename__ = "automation_runs"
    __table_args__ = (
        Index("ix_automation_runs_rule", "workspace_id", "rule_id", "id"),
        Index("ix_automation_runs_rule_status", "workspace_id", "rule_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    rule_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    event_id: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)  # None for scheduled runs
    record_id: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)
    trigger_type: Mapped[str] = mapped_column(String(32), nullable=False)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)  # the event as delivered
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # succeeded|failed|loop_stopped|skipped|retrying
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)  # why it was skipped or stopped
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    previous_attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False, default=list)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
