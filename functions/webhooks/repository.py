"""Webhook queries. Scoped sessions see one workspace; the sweeps' unscoped ones only find workspaces."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from functions.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from layers.queue.outbox import OutboxEvent


def subscriptions_page(session: Session, *, after_id: str | None, limit: int) -> list[WebhookSubscription]:
    """Oldest first: `limit + 1` rows, so the caller knows if more follow."""
    statement = select(WebhookSubscription).order_by(WebhookSubscription.id).limit(limit + 1)
    if after_id is not None:
        statement = statement.where(WebhookSubscription.id > after_id)
    return list(session.scalars(statement))


def count_subscriptions(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(WebhookSubscription)) or 0)


def subscription(session: Session, subscription_id: str, *, lock: bool = False) -> WebhookSubscription | None:
    statement = select(WebhookSubscription).where(WebhookSubscription.id == subscription_id)
    if lock:
        statement = statement.with_for_update()
    return session.scalars(statement).first()


def active_subscriptions(session: Session) -> list[WebhookSubscription]:
    return list(session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.active.is_(True)).order_by(WebhookSubscription.id)))


def fanned_out(session: Session, subscription_ids: Sequence[str], event_id: str) -> set[str]:
    """Which of these subscriptions already have the fan-out delivery of this event."""
    if not subscription_ids:
        return set()
    return set(session.scalars(select(WebhookDelivery.subscription_id).where(
        WebhookDelivery.subscription_id.in_(subscription_ids), WebhookDelivery.fanout_key == event_id)))


def delivery(session: Session, subscription_id: str | None, delivery_id: str, *,
             lock: bool = False) -> WebhookDelivery | None:
    statement = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    if subscription_id is not None:
        statement = statement.where(WebhookDelivery.subscription_id == subscription_id)
    if lock:
        statement = statement.with_for_update()
    return session.scalars(statement).first()


def deliveries_page(session: Session, subscription_id: str, *, before_id: str | None, limit: int,
                    status: str | None) -> list[WebhookDelivery]:
    """Newest first: `limit + 1` rows."""
    statement = (select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
                 .order_by(WebhookDelivery.id.desc()).limit(limit + 1))
    if before_id is not None:
        statement = statement.where(WebhookDelivery.id < before_id)
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status)
    return list(session.scalars(statement))


def attempts(session: Session, delivery_id: str) -> list[WebhookAttempt]:
    return list(session.scalars(
        select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.id)))


def delete_subscription(session: Session, subscription_id: str) -> None:
    delivery_ids = select(WebhookDelivery.id).where(WebhookDelivery.subscription_id == subscription_id)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id))
    session.execute(delete(WebhookSubscription).where(WebhookSubscription.id == subscription_id))


def logged_event(session: Session, event_id: str) -> OutboxEvent | None:
    """An event of the workspace's event log (published, so it has its sequence)."""
    return session.scalars(select(OutboxEvent).where(
        OutboxEvent.id == event_id, OutboxEvent.kind == "event", OutboxEvent.sequence.is_not(None))).first()


# ---- sweeps ------------------------------------------------------------------------------------------
def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Pending, due, and not left to a job that is queued or running for it."""
    return (WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.sweep_after.is_(None), WebhookDelivery.sweep_after <= now))


def workspaces_with_due(session: Session, now: datetime, *, limit: int) -> list[str]:
    """Unscoped: workspaces holding deliveries due for another attempt."""
    rows = session.scalars(
        select(WebhookDelivery.workspace_id).where(*_due(now))
        .order_by(WebhookDelivery.next_attempt_at).limit(limit))
    return list(dict.fromkeys(rows))


def claim_due(session: Session, now: datetime, *, limit: int) -> list[WebhookDelivery]:
    """Due deliveries of the scoped workspace, row-locked; SKIP LOCKED leaves another sweep's claim alone."""
    return list(session.scalars(
        select(WebhookDelivery).where(*_due(now))
        .order_by(WebhookDelivery.next_attempt_at).limit(limit)
        .with_for_update(skip_locked=True)))


def purge_before(session: Session, cutoff: datetime, *, batch: int) -> int:
    """Unscoped: delete one batch of finished deliveries created before `cutoff`, with their attempts."""
    ids = list(session.scalars(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.created_at < cutoff, WebhookDelivery.status != "pending")
        .order_by(WebhookDelivery.created_at).limit(batch)))
    if not ids:
        return 0
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    return len(ids)


def active_event_types(session: Session, workspace_ids: set[str]) -> dict[str, list[list[str]]]:
    """Unscoped: per workspace (of these), the event type patterns of each of its active webhooks."""
    found: dict[str, list[list[str]]] = {}
    for workspace_id, patterns in session.execute(
        select(WebhookSubscription.workspace_id, WebhookSubscription.event_types)
        .where(WebhookSubscription.workspace_id.in_(sorted(workspace_ids)), WebhookSubscription.active.is_(True))):
        found.setdefault(workspace_id, []).append(list(patterns))
    return found
