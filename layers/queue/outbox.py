"""The transactional outbox: change events written in the same transaction as the change.

A relay (the worker tier) publishes committed rows after commit; a rolled-back write leaves no row,
so nothing is ever sent for it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, TenantMixin, UTCDateTime
from layers.db.uow import UnitOfWork
from shared.clock import isoformat, utcnow
from shared.ids import new_id


class OutboxEvent(TenantMixin, Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_unpublished", "published_at", "id"),
        Index("ix_outbox_events_workspace_id_id", "workspace_id", "id"),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)
    record_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


def emit(uow: UnitOfWork, *, event_type: str, object_type: str, record_id: str, data: dict[str, Any]) -> OutboxEvent:
    """Add an event to the unit of work's transaction (committed with the change, or not at all)."""
    scope = uow.scope
    assert scope is not None, "events belong to a workspace"
    now = utcnow()
    event = OutboxEvent(
        id=new_id(),
        workspace_id=scope.workspace_id,
        event_type=event_type,
        object_type=object_type,
        record_id=record_id,
        occurred_at=now,
        payload={
            "type": event_type,
            "occurred_at": isoformat(now),
            "workspace_id": scope.workspace_id,
            "actor": {"type": scope.actor.type, "id": scope.actor.id},
            "source": scope.source,
            "request_id": scope.request_id,
            "data": data,
        },
    )
    uow.session.add(event)
    return event
