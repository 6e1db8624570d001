"""Webhook subscriptions, their deliveries (one per event and subscription) and each delivery's attempts."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, TenantMixin, UTCDateTime
from shared.clock import utcnow
from shared.ids import new_id


class WebhookSubscription(TenantMixin, Base):
    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_list", "workspace_id", "id"),)

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    # Filter groups of the search language, over the records of `filter_object_type` (plural, "contacts").
    filter: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType, nullable=True)
    filter_object_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("1"))
    # Kept in clear: signing needs the secret itself, so a hash would not do. Never returned after it is shown.
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    previous_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="healthy")  # healthy | failing
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class WebhookDelivery(TenantMixin, Base):
    """One event to one subscription; `id` is the Webhook-Id receivers dedupe on (stable across retries)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The fan-out's at-least-once guard: one delivery per event and subscription. Manual redeliveries,
        # tests and automations leave `fanout_key` NULL, so they may repeat an event on purpose.
        Index("ux_webhook_deliveries_fanout", "subscription_id", "fanout_key", unique=True),
        Index("ix_webhook_deliveries_log", "workspace_id", "subscription_id", "id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_created", "created_at"),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    subscription_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    fanout_key: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)
    event_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    event: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)  # event | redeliver | test | automation
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")  # pending|succeeded|failed
    attempt_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # While a job for this delivery is queued or running (its first attempt, a retry sent with an SQS delay,
    # one the sweep enqueued), the retry sweep leaves it alone until then; None: the sweep sends it when due.
    sweep_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class WebhookAttempt(TenantMixin, Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_delivery", "workspace_id", "delivery_id", "id"),
        Index("ix_webhook_attempts_attempted", "attempted_at"),
    )

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    delivery_id: Mapped[str] = mapped_column(IdColumn(), nullable=False)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    response_excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
