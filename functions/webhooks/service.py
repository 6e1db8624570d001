"""Webhook use cases: subscriptions, the fan-out of events into deliveries, signed attempts and retries.

A delivery is created in the same transaction as the job that sends it (`enqueue`), so none is lost
and none is sent for a rolled-back change. Each attempt is one POST outside any transaction; its
result is written afterwards. Retries are ours, never the queue's (the deliver job does not raise for a
receiver's failure): a backoff SQS can hold (≤ 15 min: the early retries) is a deliver job sent with
that delay, written with the attempt's result; longer ones, and jobs that were lost, are sent by the
retry sweep (`retry_due`, every minute), which leaves a delivery alone while a job for it is queued
(`sweep_after`).

A webhook gets only events that occurred once it existed: the fan-out skips older events still on
their way through the outbox or the queue.

A subscription's `filter` is evaluated when the event is fanned out, against the record's state at
that moment (the search's own SQL), not against the record as it was when the event happened.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from random import Random
from typing import Any

from pydantic import TypeAdapter

from functions.webhooks import repository, rules
from functions.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from functions.webhooks.schemas import (
    AttemptRead,
    DeliverJob,
    DeliveryDetail,
    DeliveryPage,
    DeliveryRead,
    EventJob,
    WebhookCreate,
    WebhookPage,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from functions.webhooks.signing import sign
from layers.db.uow import UnitOfWork
from layers.http import outbound
from layers.http.requests import validate
from layers.queue.jobs import enqueue, first_time
from layers.queue.outbox import event_body
from layers.records.event_filters import check_event_filter
from layers.records.search import FilterGroup
from layers.records.service import service_for
from shared.clock import isoformat, utcnow
from shared.context import Scope, system_scope
from shared.cursors import id_page, id_position
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.ids import new_id
from shared.settings import get_settings

DELIVER_JOB = "webhooks_deliver"
SWEEP_LIMIT = 500
PURGE_BATCH = 1000
MANUAL_TRIGGERS = ("redeliver", "test")
_groups = TypeAdapter(list[FilterGroup])
_rng = Random()


# ---- subscriptions -----------------------------------------------------------------------------------
def create_webhook(scope: Scope, data: WebhookCreate) -> WebhookWithSecret:
    _check_url(data.url)
    with UnitOfWork(scope) as uow:
        if repository.count_subscriptions(uow.session) >= rules.MAX_SUBSCRIPTIONS:
            raise Conflict(f"a workspace has at most {rules.MAX_SUBSCRIPTIONS} webhooks")
        filter_type = _checked_filter(uow, data.event_types, data.filter)
        now = utcnow()
        row = WebhookSubscription(
            id=new_id(), url=data.url, event_types=data.event_types, filter=_dump_groups(data.filter),
            filter_object_type=filter_type, description=data.description, active=data.active,
            secret=rules.new_secret(), status="healthy", created_at=now, updated_at=now)
        uow.session.add(row)
        uow.commit()
        return _with_secret(row)


def list_webhooks(scope: Scope, *, limit: int, cursor: str | None) -> WebhookPage:
    secret = get_settings().cursor_secret
    after = id_position(cursor, secret, query="webhooks", direction="after")
    with UnitOfWork(scope) as uow:
        rows, next_cursor = id_page(repository.subscriptions_page(uow.session, after_id=after, limit=limit),
                                    limit=limit, secret=secret, query="webhooks", direction="after")
        data = [WebhookRead.model_validate(r) for r in rows]
    return WebhookPage(data=data, next_cursor=next_cursor)


def get_webhook(scope: Scope, webhook_id: str) -> WebhookRead:
    with UnitOfWork(scope) as uow:
        return WebhookRead.model_validate(_subscription_or_404(uow, webhook_id))


def update_webhook(scope: Scope, webhook_id: str, data: WebhookUpdate) -> WebhookRead:
    given = data.model_fields_set
    for name in ("url", "event_types", "active"):
        if name in given and getattr(data, name) is None:
            raise ValidationFailed("a required field cannot be cleared", errors=[
                {"field": name, "message": "cannot be null", "code": "required"}])
    if data.url is not None:
        _check_url(data.url)
    with UnitOfWork(scope) as uow:
        row = _subscription_or_404(uow, webhook_id, lock=True)
        event_types = data.event_types if data.event_types is not None else row.event_types
        groups = data.filter if "filter" in given else _load_groups(row.filter)
        if {"event_types", "filter"} & given:
            row.filter_object_type = _checked_filter(uow, event_types, groups)
            row.event_types, row.filter = event_types, _dump_groups(groups)
        if data.url is not None:
            row.url = data.url
        if "description" in given:
            row.description = data.description
        if data.active is not None:
            row.active = data.active
        row.updated_at = utcnow()
        uow.commit()
        return WebhookRead.model_validate(row)


def delete_webhook(scope: Scope, webhook_id: str) -> None:
    """The subscription and its delivery log; deliveries still queued find nothing and stop."""
    with UnitOfWork(scope) as uow:
        _subscription_or_404(uow, webhook_id, lock=True)
        repository.delete_subscription(uow.session, webhook_id)
        uow.commit()


def rotate_secret(scope: Scope, webhook_id: str) -> WebhookWithSecret:
    """A new secret, shown once; the previous one keeps signing alongside it for 24 hours."""
    with UnitOfWork(scope) as uow:
        row = _subscription_or_404(uow, webhook_id, lock=True)
        now = utcnow()
        row.previous_secret, row.previous_secret_expires_at = row.secret, now + rules.PREVIOUS_SECRET_GRACE
        row.secret = rules.new_secret()
        row.updated_at = now
        uow.commit()
        return _with_secret(row)


# ---- the delivery log --------------------------------------------------------------------------------
def list_deliveries(scope: Scope, webhook_id: str, *, limit: int, cursor: str | None,
                    status: str | None) -> DeliveryPage:
    secret = get_settings().cursor_secret
    query = f"{webhook_id}|{status}"
    before = id_position(cursor, secret, query=query, direction="before")
    with UnitOfWork(scope) as uow:
        _subscription_or_404(uow, webhook_id)
        rows, next_cursor = id_page(
            repository.deliveries_page(uow.session, webhook_id, before_id=before, limit=limit, status=status),
            limit=limit, secret=secret, query=query, direction="before")
        data = [DeliveryRead.model_validate(r) for r in rows]
    return DeliveryPage(data=data, next_cursor=next_cursor)


def get_delivery(scope: Scope, webhook_id: str, delivery_id: str) -> DeliveryDetail:
    with UnitOfWork(scope) as uow:
        _subscription_or_404(uow, webhook_id)
        row = repository.delivery(uow.session, webhook_id, delivery_id)
        if row is None:
            raise NotFound(f"no delivery {delivery_id} of webhook {webhook_id}")
        attempts = [AttemptRead.model_validate(a) for a in repository.attempts(uow.session, delivery_id)]
        read = DeliveryRead.model_validate(row)
        return DeliveryDetail(**read.model_dump(), event=row.event, attempts=attempts)


def redeliver(scope: Scope, webhook_id: str, event_id: str) -> DeliveryRead:
    """Send any event of the workspace's event log again, as a new delivery (even if one succeeded)."""
    with UnitOfWork(scope) as uow:
        row = _subscription_or_404(uow, webhook_id)
        logged = repository.logged_event(uow.session, event_id)
        if logged is None:
            raise NotFound(f"no event {event_id} in this workspace's event log")
        delivery = _create_delivery(uow, row, event_body(logged), trigger="redeliver")
        uow.commit()
        return DeliveryRead.model_validate(delivery)


def send_test(scope: Scope, webhook_id: str) -> DeliveryRead:
    """A `webhook.test` ping through the normal delivery path (signed, logged, retried)."""
    with UnitOfWork(scope) as uow:
        row = _subscription_or_404(uow, webhook_id)
        ping: dict[str, Any] = {
            "id": new_id(), "sequence": None, "type": "webhook.test", "object_type": "webhooks",
            "record_id": row.id, "workspace_id": scope.workspace_id, "occurred_at": isoformat(utcnow()),
            "actor": {"type": scope.actor.type, "id": scope.actor.id}, "source": scope.source,
            "request_id": scope.request_id, "causation": [], "data": {"webhook_id": row.id},
        }
        delivery = _create_delivery(uow, row, ping, trigger="test")
        uow.commit()
        return DeliveryRead.model_validate(delivery)


# ---- for other capabilities (automations) ------------------------------------------------------------
def subscriptions_among(uow: UnitOfWork, subscription_ids: list[str]) -> set[str]:
    """Which of these ids name a webhook of the uow's workspace (an automation checks what it will send to)."""
    return {s for s in set(subscription_ids) if repository.subscription(uow.session, s) is not None}


def schedule_delivery(uow: UnitOfWork, *, subscription_id: str, event: dict[str, Any]) -> str:
    """Deliver `event` (an event_body-shaped dict) to that webhook of the uow's workspace, in its transaction.

    Returns the delivery id; NotFound when the workspace has no such webhook."""
    row = _subscription_or_404(uow, subscription_id)
    body = validate(EventJob, event, prefix=("event",)).model_dump(mode="json")
    return _create_delivery(uow, row, body, trigger="automation").id


# ---- jobs ----------------------------------------------------------------------------------------------
def event_types_with_webhooks(pending: Mapping[str, set[str]]) -> set[tuple[str, str]]:
    """Of the pending (workspace, event type) pairs, those an active webhook subscribes to: the relay sends
    only their events to the fan-out."""
    if not pending:
        return set()
    with UnitOfWork(unscoped=True) as uow:
        subscribed = repository.active_event_types(uow.session, set(pending))
    return {(workspace_id, event_type) for workspace_id, patterns in subscribed.items()
            for event_type in pending.get(workspace_id, ())
            if any(rules.any_type_matches(p, event_type) for p in patterns)}


def fan_out(event: EventJob) -> int:
    """One delivery per active subscription whose types and filter match; how many were created."""
    scope = system_scope(event.workspace_id, source="worker", causation=tuple(event.causation))
    with UnitOfWork(scope) as uow:
        candidates = [s for s in repository.active_subscriptions(uow.session)
                      if rules.any_type_matches(s.event_types, event.type)
                      and rules.occurred_since(event.occurred_at, s.created_at)]
        if not candidates or not first_time(uow, f"webhooks_fanout:{event.id}"):
            return 0
        done = repository.fanned_out(uow.session, [s.id for s in candidates], event.id)
        body = event.model_dump(mode="json")
        created = 0
        for row in candidates:
            if row.id in done or not _filter_matches(uow, row, event):
                continue
            _create_delivery(uow, row, body, trigger="event", fanout_key=event.id)
            created += 1
        uow.commit()
    return created


def deliver(job: DeliverJob, *, now: datetime | None = None, rng: Random | None = None) -> str | None:
    """One attempt: POST, log it, then succeed, schedule a retry, or give up after 24 h of trying.

    Returns the delivery's status afterwards (None when there was nothing to send)."""
    at = now or utcnow()
    scope = system_scope(job.workspace_id, source="worker")
    with UnitOfWork(scope) as uow:
        # Claim the attempt before sending (row lock + counter, committed below): a second copy of this
        # job — SQS delivers at least once, and a sender's retry can publish twice — finds the counter
        # moved and sends nothing. A worker dying after the claim leaves the delivery to the retry sweep.
        row = repository.delivery(uow.session, None, job.delivery_id, lock=True)
        if row is None or row.status != "pending" or row.attempt_count != (job.attempt or 0):
            return None
        subscription = repository.subscription(uow.session, row.subscription_id)
        if subscription is None:
            return None
        # A disabled webhook gets nothing automatic; a person's redelivery or test ping is still sent.
        if not subscription.active and row.trigger not in MANUAL_TRIGGERS:
            _finish(row, "failed", at, error="the webhook was disabled before this delivery was sent")
            uow.commit()
            return "failed"
        secrets = rules.signing_secrets(subscription.secret, subscription.previous_secret,
                                        subscription.previous_secret_expires_at, at)
        url, body = subscription.url, delivery_body(row.id, row.event)
        row.attempt_count += 1
        row.sweep_after = at + rules.CLAIM_LEASE
        uow.commit()
    timestamp = int(at.timestamp())
    outcome = outbound.post(url, body, {
        "Content-Type": "application/json",
        "Webhook-Id": job.delivery_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": sign(secrets, body, timestamp=timestamp),
    })
    return _record_attempt(scope, job.delivery_id, outcome, at, rng or _rng)


def retry_due(*, now: datetime | None = None, limit: int = SWEEP_LIMIT) -> int:
    """Enqueue deliveries whose next attempt is due, claiming them first so two sweeps never both send."""
    now = now or utcnow()
    with UnitOfWork(unscoped=True) as uow:
        workspaces = repository.workspaces_with_due(uow.session, now, limit=limit)
    claimed = 0
    for workspace_id in workspaces:
        with UnitOfWork(system_scope(workspace_id, source="worker")) as uow:
            rows = repository.claim_due(uow.session, now, limit=limit)
            for row in rows:
                row.sweep_after = now + rules.CLAIM_LEASE
                enqueue(uow, DELIVER_JOB, DeliverJob(workspace_id=workspace_id, delivery_id=row.id,
                                                     attempt=row.attempt_count))
            uow.commit()
        claimed += len(rows)
    return claimed


def purge_logs(*, now: datetime | None = None) -> int:
    """Delete finished deliveries (and their attempts) older than 30 days, in batches."""
    cutoff = (now or utcnow()) - rules.LOG_RETENTION
    total = 0
    while True:
        with UnitOfWork(unscoped=True) as uow:
            deleted = repository.purge_before(uow.session, cutoff, batch=PURGE_BATCH)
            uow.commit()
        total += deleted
        if deleted < PURGE_BATCH:
            return total


def delivery_body(delivery_id: str, event: dict[str, Any]) -> bytes:
    """What receivers get (and what is signed): `{"id": <delivery id>, "event": <the event>}`."""
    return json.dumps({"id": delivery_id, "event": event}, separators=(",", ":"), default=str).encode()


# ---- helpers -------------------------------------------------------------------------------------------
def _subscription_or_404(uow: UnitOfWork, webhook_id: str, *, lock: bool = False) -> WebhookSubscription:
    row = repository.subscription(uow.session, webhook_id, lock=lock)
    if row is None:
        raise NotFound(f"no webhook {webhook_id}")
    return row


def _check_url(url: str) -> None:
    settings = get_settings()
    outbound.check_target_url(url, allow_http=settings.is_local, allowed_private=settings.webhook_allowed_private_cidrs)


def _checked_filter(uow: UnitOfWork, event_types: list[str], groups: list[FilterGroup] | None) -> str | None:
    """The object type (plural) a filter is about, after the search checked it; None without a filter."""
    return check_event_filter(uow, event_types, groups) if groups else None


def _filter_matches(uow: UnitOfWork, row: WebhookSubscription, event: EventJob) -> bool:
    if not row.filter:
        return True
    if event.object_type != row.filter_object_type:
        return False
    service = service_for(event.object_type)
    return service is not None and service.matches(uow, event.record_id, _load_groups(row.filter) or [])


def _dump_groups(groups: list[FilterGroup] | None) -> list[dict[str, Any]] | None:
    return [g.model_dump(mode="json", exclude_none=True) for g in groups] if groups else None


def _load_groups(stored: list[dict[str, Any]] | None) -> list[FilterGroup] | None:
    return _groups.validate_python(stored) if stored else None


def _with_secret(row: WebhookSubscription) -> WebhookWithSecret:
    return WebhookWithSecret(**WebhookRead.model_validate(row).model_dump(), secret=row.secret)


def _create_delivery(uow: UnitOfWork, subscription: WebhookSubscription, event: dict[str, Any], *,
                     trigger: str, fanout_key: str | None = None) -> WebhookDelivery:
    now = utcnow()
    row = WebhookDelivery(
        id=new_id(), subscription_id=subscription.id, fanout_key=fanout_key, event_id=str(event["id"]),
        event_type=str(event["type"]), event=event, trigger=trigger, status="pending", attempt_count=0,
        created_at=now, next_attempt_at=now, sweep_after=now + rules.CLAIM_LEASE)  # the sweep: for a lost job
    uow.session.add(row)
    enqueue(uow, DELIVER_JOB, DeliverJob(workspace_id=subscription.workspace_id, delivery_id=row.id, attempt=0))
    return row


def _record_attempt(scope: Scope, delivery_id: str, outcome: outbound.Outcome, at: datetime, rng: Random) -> str | None:
    with UnitOfWork(scope) as uow:
        row = repository.delivery(uow.session, None, delivery_id, lock=True)
        if row is None:  # the webhook was deleted while we were sending
            return None
        uow.session.add(WebhookAttempt(
            id=new_id(), delivery_id=row.id, attempted_at=at, status_code=outcome.status_code,
            latency_ms=outcome.latency_ms, response_excerpt=outcome.excerpt,
            error=outcome.error[:500] if outcome.error else None))
        row.first_attempt_at = row.first_attempt_at or at  # attempt_count moved when the attempt was claimed
        row.last_attempt_at, row.last_status_code = at, outcome.status_code
        row.last_error = outcome.error[:500] if outcome.error else None
        if row.status == "pending":  # a concurrent copy of this job may have settled it already
            subscription = repository.subscription(uow.session, row.subscription_id)
            if outcome.ok:
                _finish(row, "succeeded", at)
                if subscription is not None and subscription.status == "failing":
                    subscription.status, subscription.failing_since = "healthy", None
            elif rules.gives_up(row.first_attempt_at, at):
                _finish(row, "failed", at, error=outcome.error)
                if subscription is not None and subscription.status != "failing":
                    subscription.status, subscription.failing_since = "failing", at
            else:
                _plan_retry(uow, row, at, rules.retry_delay(row.attempt_count, rng))
        uow.commit()
        return row.status


def _plan_retry(uow: UnitOfWork, row: WebhookDelivery, at: datetime, delay: timedelta) -> None:
    """The next attempt after `delay`: a deliver job SQS holds back that long, or the sweep's when longer."""
    row.next_attempt_at = at + delay
    seconds = rules.queued_retry_seconds(delay)
    if seconds is None:
        row.sweep_after = None
        return
    enqueue(uow, DELIVER_JOB, DeliverJob(workspace_id=row.workspace_id, delivery_id=row.id, attempt=row.attempt_count),
            delay_seconds=seconds)
    row.sweep_after = row.next_attempt_at + rules.CLAIM_LEASE


def _finish(row: WebhookDelivery, status: str, at: datetime, *, error: str | None = None) -> None:
    row.status, row.completed_at, row.next_attempt_at, row.sweep_after = status, at, None, None
    if error is not None:
        row.last_error = error[:500]
