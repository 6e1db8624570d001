"""Webhook schemas: WebhookCreate / WebhookUpdate / WebhookRead / WebhookPage, deliveries, job payloads."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field

from layers.records.search import FilterGroup
from shared.event_patterns import check_pattern
from shared.schemas import Omittable, Page, ReadModel, RecordId, StrictModel

DeliveryStatus = Literal["pending", "succeeded", "failed"]
Trigger = Literal["event", "redeliver", "test", "automation"]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


EventPattern = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_pattern)]
EventPatterns = Annotated[list[EventPattern], Field(min_length=1, max_length=50), AfterValidator(_unique)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
FilterGroups = Annotated[list[FilterGroup], Field(min_length=1, max_length=5)]
Description = Annotated[str, Field(max_length=500)]


class WebhookCreate(StrictModel):
    url: Url = Field(description="https:// (http:// only in local mode); no credentials; a public address")
    event_types: EventPatterns = Field(description="`contact.created`, `deal.stage_changed`, `contact.*` or `*`")
    filter: FilterGroups | None = Field(None, description=(
        "Search filter groups (OR of AND-groups). Every event type must be about one kind of record "
        "(`contact.*`, `deal.stage_changed`); an event is sent only if its record matches the filter in its "
        "current state when the event is fanned out, not as it was when the event happened"))
    description: Description | None = None
    active: bool = True


class WebhookUpdate(StrictModel):
    """Fields left out are kept; `filter: null` and `description: null` clear them."""

    url: Url = Omittable()
    event_types: EventPatterns = Omittable()
    filter: FilterGroups | None = None
    description: Description | None = None
    active: bool = Omittable()


class WebhookRead(ReadModel):
    id: str
    url: str
    event_types: list[str]
    filter: list[dict[str, Any]] | None
    description: str | None
    active: bool
    status: Literal["healthy", "failing"] = Field(description=(
        "`failing` once a delivery gave up after 24 h of retries; a later success clears it"))
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None = Field(description=(
        "While set and in the future, deliveries carry a second signature made with the previous secret"))
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookRead):
    secret: str = Field(description="The signing secret: shown now, never again")


class WebhookPage(Page[WebhookRead]):
    pass


class RedeliverRequest(StrictModel):
    event_id: RecordId = Field(description="Any event of the workspace's event log")


class AttemptRead(ReadModel):
    id: str
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None = Field(description="The first 1 KB of the receiver's answer")
    error: str | None


class DeliveryRead(ReadModel):
    id: str = Field(description="Sent as Webhook-Id (the same on every retry): receivers dedupe on it")
    webhook_id: str = Field(validation_alias=AliasChoices("subscription_id", "webhook_id"))
    event_id: str
    event_type: str
    trigger: Trigger
    status: DeliveryStatus
    attempt_count: int
    created_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    completed_at: datetime | None
    last_status_code: int | None
    last_error: str | None


class DeliveryDetail(DeliveryRead):
    event: dict[str, Any]
    attempts: list[AttemptRead]


class DeliveryPage(Page[DeliveryRead]):
    pass


class ListQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class DeliveriesQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None
    status: DeliveryStatus | None = None


class EventJob(BaseModel):
    """An event as every consumer gets it (layers/queue/outbox.py `event_body`); extra keys are kept."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=26)
    sequence: int | None = None
    type: str = Field(min_length=1, max_length=64)
    object_type: str = Field(min_length=1, max_length=32)
    record_id: str = Field(min_length=1, max_length=26)
    workspace_id: str = Field(min_length=1, max_length=26)
    occurred_at: str | None = None
    actor: dict[str, Any] | None = None
    source: str | None = None
    request_id: str | None = None
    causation: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


class DeliverJob(BaseModel):
    workspace_id: str = Field(min_length=1, max_length=26)
    delivery_id: str = Field(min_length=1, max_length=26)
    # How many attempts the delivery had when this job was enqueued: a second copy of the job (the queue
    # delivers at least once) finds more and does not send again. None: send whatever the count.
    attempt: int | None = Field(None, ge=0)
