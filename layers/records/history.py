"""Field-level history: one row per changed field, in the same transaction as the change."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, TenantMixin, UTCDateTime
from layers.db.uow import UnitOfWork
from shared.clock import isoformat, utcnow
from shared.ids import new_id


class FieldHistory(TenantMixin, Base):
    __tablename__ = "field_history"
    __table_args__ = (Index("ix_field_history_record", "workspace_id", "object_type", "record_id", "id"),)

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)
    record_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # created|updated|archived|restored
    field: Mapped[str] = mapped_column(String(96), nullable=False)  # "custom_fields." + a 63-character key
    old_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    request_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


def record_changes(
    uow: UnitOfWork, *, object_type: str, record_id: str, action: str, changes: dict[str, tuple[Any, Any]],
    at: datetime,
) -> None:
    scope = uow.scope
    assert scope is not None
    for field, (old, new) in changes.items():
        uow.session.add(
            FieldHistory(
                id=new_id(),
                workspace_id=scope.workspace_id,
                object_type=object_type,
                record_id=record_id,
                action=action,
                field=field,
                old_value=old,
                new_value=new,
                actor_type=scope.actor.type,
                actor_id=scope.actor.id,
                source=scope.source,
                request_id=scope.request_id,
                changed_at=at,
            )
        )


def history_entry(row: FieldHistory) -> dict[str, Any]:
    """One history row as the API answers it (the history routes and timelines)."""
    return {
        "id": row.id, "record_id": row.record_id, "action": row.action, "field": row.field,
        "old_value": row.old_value, "new_value": row.new_value,
        "actor": {"type": row.actor_type, "id": row.actor_id}, "source": row.source,
        "request_id": row.request_id, "changed_at": isoformat(row.changed_at),
    }
