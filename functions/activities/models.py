"""Activities. Links to contacts, companies and deals are associations (functions/associations)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, JSONType, OwnedMixin, RecordMixin, UTCDateTime


class Activity(RecordMixin, OwnedMixin, Base):
    """`owner_id` is the author (notes, calls, meetings, emails) or the assignee (tasks)."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_tasks", "workspace_id", "kind", "owner_id", "completed_at", "due_at"),
        Index("ix_activities_timeline", "workspace_id", "occurred_at", "id"),
        Index("ix_activities_list", "workspace_id", "archived_at", "id"),
        Index("ix_activities_fulltext", "subject", "body", mysql_prefix="FULLTEXT"),
        # The reminder sweeps read across workspaces: tasks not yet reminded, by due time.
        Index("ix_activities_due_reminders", "due_reminded_at", "due_at"),
        Index("ix_activities_overdue_notices", "overdue_notified_at", "due_at"),
    )

    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # note|task|call|meeting|email
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)  # its place on a timeline
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    priority: Mapped[str | None] = mapped_column(String(8), nullable=True)  # low|normal|high
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    direction: Mapped[str | None] = mapped_column(String(8), nullable=True)  # inbound|outbound (emails)
    email_from: Mapped[str | None] = mapped_column(String(320), nullable=True)
    email_to: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    # When `task.due` / `task.overdue` went out (functions/activities/schedules.py); a new due time clears both.
    due_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    # Not a column: the activity's links (associations), set by the service when it loads or writes
    # one, so reads, history and events see them like a field. Compact form: {"contacts": [ids], ...}.
    @property
    def links(self) -> dict[str, list[str]] | None:
        return self.__dict__.get("_activity_links")

    @links.setter
    def links(self, value: dict[str, list[str]] | None) -> None:
        self.__dict__["_activity_links"] = value
