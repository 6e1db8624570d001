"""Real-time schemas: ViewerRead / ViewerPage for the REST side, SubscriptionCreate for the socket's `subscribe`."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from layers.records.search import FilterGroup
from shared.event_patterns import check_pattern
from shared.schemas import StrictModel


class ViewerRead(BaseModel):
    user_id: str
    email: str | None = None
    since: str = Field(description="When they opened the record (their earliest open tab)")


class ViewerPage(BaseModel):
    data: list[ViewerRead] = Field(description="People with the record open now, in the order they opened it")


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


EventPattern = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_pattern)]
RecordRef = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[a-z_]+/[0-9A-HJKMNP-TV-Z]{26}$",
                                 description="`<object type>/<id>`: `contacts/01J9Z8Q4V6W2X3Y5Z7A9B1C3D5`")]


class SubscriptionCreate(StrictModel):
    """What a socket's `subscribe` sends: an event must match the types, be about one of the records (when
    any are named) and match the filter (when there is one, as the record is when the event is sent)."""

    id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                           description="Name it to replace or unsubscribe it later (default: generated)")
    event_types: Annotated[list[EventPattern], Field(min_length=1, max_length=50), AfterValidator(_unique)] = Field(
        default_factory=lambda: ["*"], description="`contact.created`, `deal.*` or `*` (the webhooks' language)")
    records: Annotated[list[RecordRef], Field(min_length=1, max_length=100), AfterValidator(_unique)] | None = None
    filter: Annotated[list[FilterGroup], Field(min_length=1, max_length=5)] | None = Field(None, description=(
        "Search filter groups (OR of AND-groups), as webhooks take: the event types must be about one kind "
        "of record"))


def applied(data: SubscriptionCreate, *, subscription_id: str, filter_object_type: str | None) -> dict[str, Any]:
    return {"id": subscription_id, "event_types": data.event_types, "records": data.records,
            "filter": [g.model_dump(mode="json", exclude_none=True) for g in data.filter] if data.filter else None,
            "filter_object_type": filter_object_type}
