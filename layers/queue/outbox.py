"""The transactional outbox: change events and jobs written in the same transaction as the change.

The relay (layers/queue/relay.py) publishes committed rows after commit; a rolled-back write
leaves no row, so nothing is ever sent for it. Events get a per-workspace `sequence` when the
relay publishes them: that is the order of the event log (`GET /v1/events`), and it never lets a
reader skip an event that committed late (ULIDs are taken before commit, so they are not).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, TenantMixin, UTCDateTime
from layers.db.uow import UnitOfWork
from layers.queue.lanes import current_lane
from layers.queue.wakeup import nudge_after_commit
from shared.clock import isoformat, utcnow
from shared.ids import new_id

OutboxKind = Literal["event", "job"]


class OutboxEvent(TenantMixin, Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_unpublished", "published_at", "id"),
        Index("ix_outbox_events_pending_by_workspace", "workspace_id", "published_at", "id"),
        Index("ix_outbox_events_workspace_id_id", "workspace_id", "id"),
        Index("ux_outbox_events_workspace_sequence", "workspace_id", "sequence", unique=True),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(8), nullable=False, default="event", server_default="event")
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)  # a job's handler name for jobs
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)
    record_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sequence: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The queue the row leaves by (layers/queue/lanes.py): a bulk import's events and jobs stay out of the
    # way of the jobs people wait for.
    lane: Mapped[str] = mapped_column(String(8), nullable=False, default="main", server_default="main")
    # A job sent with an SQS delay (webhook retries back off this way); None sends it at once.
    delay_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)


class EventSequence(Base):
    """The last event sequence handed out per workspace; its row lock makes one relay own a workspace."""

    __tablename__ = "event_sequences"

    workspace_id: Mapped[str] = mapped_column(IdColumn(), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


def emit(uow: UnitOfWork, *, event_type: str, object_type: str, record_id: str, data: dict[str, Any]) -> OutboxEvent:
    """Add an event to the unit of work's transaction (committed with the change, or not at all)."""
    scope = uow.scope
    assert scope is not None, "events belong to a workspace"
    now = utcnow()
    event = OutboxEvent(
        id=new_id(),
        kind="event",
        workspace_id=scope.workspace_id,
        event_type=event_type,
        object_type=object_type,
        record_id=record_id,
        occurred_at=now,
        lane=current_lane(),
        payload={
            "type": event_type,
            "occurred_at": isoformat(now),
            "workspace_id": scope.workspace_id,
            "actor": {"type": scope.actor.type, "id": scope.actor.id},
            "source": scope.source,
            "request_id": scope.request_id,
            "causation": list(scope.causation),
            "data": data,
        },
    )
    uow.session.add(event)
    nudge_after_commit(uow)
    return event


def event_body(row: OutboxEvent) -> dict[str, Any]:
    """The one shape of an event: on the event log, in consumers' jobs and in webhook deliveries."""
    payload = row.payload
    return {
        "id": row.id,
        "sequence": row.sequence,
        "type": row.event_type,
        "object_type": row.object_type,
        "record_id": row.record_id,
        "workspace_id": row.workspace_id,
        "occurred_at": payload.get("occurred_at") or isoformat(row.occurred_at),
        "actor": payload.get("actor"),
        "source": payload.get("source"),
        "request_id": payload.get("request_id"),
        "causation": payload.get("causation", []),
        "data": payload.get("data", {}),
    }


# Which job handlers receive committed events (the composition root names them: webhooks fan-out,
# automations). Layers may not import capabilities, so the list is handed in, each with an optional
# interest: given the pending events as {workspace id: {event types}}, the (workspace id, event type)
# pairs the consumer has something to do with (an active webhook subscribed to that type, a rule). The
# relay sends an event only to the consumers interested in its type in its workspace, so an import's
# thousand `contact.created` cost no jobs in a workspace whose webhooks only want `deal.*`.
PendingTypes = Mapping[str, set[str]]
Interest = Callable[[PendingTypes], set[tuple[str, str]]]
_event_consumers: dict[str, Interest | None] = {}


def use_event_consumers(consumers: Mapping[str, Interest | None]) -> None:
    global _event_consumers
    _event_consumers = dict(consumers)


def event_consumers() -> tuple[str, ...]:
    return tuple(_event_consumers)


def interested_consumers(pending: PendingTypes) -> dict[str, set[tuple[str, str]]]:
    """Consumer -> the (workspace id, event type) pairs, of those pending, whose events it should get."""
    every = {(workspace_id, event_type) for workspace_id, types in pending.items() for event_type in types}
    return {name: every if interest is None else interest(pending) & every
            for name, interest in _event_consumers.items()}
