"""The event log: what changed in a workspace, in order, as `event_body` renders it."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from shared.objects import event_type_hint
from shared.schemas import Actor, StrictModel

TYPE_PATTERN = r"^(\*|[a-z_]+\.(\*|[a-z_]+))$"


class EventsQuery(StrictModel):
    after: str | None = Field(None, max_length=200, description="A cursor from a previous page (or none: the oldest "
                                                                 "event kept)")
    types: str | None = Field(None, max_length=1000, description="Comma-separated types or `object.*` patterns")
    limit: int = Field(100, ge=1, le=500)

    @field_validator("types")
    @classmethod
    def _types(cls, value: str | None) -> str | None:
        import re

        if value is None:
            return None
        for part in value.split(","):
            if not re.match(TYPE_PATTERN, part.strip()):
                raise ValueError(f"{part.strip()!r} is not an event type (`contact.created`) or pattern (`deal.*`)")
            hint = event_type_hint(part.strip())
            if hint is not None:  # it would match nothing, silently
                raise ValueError(f"event types name their object in the singular: did you mean {hint!r}?")
        return value

    def type_list(self) -> list[str]:
        return [t.strip() for t in self.types.split(",")] if self.types else []


class EventRead(BaseModel):
    id: str
    sequence: int = Field(description="Position in the workspace's event log (gapless as published)")
    type: str
    object_type: str
    record_id: str
    workspace_id: str
    occurred_at: str
    actor: Actor | None = None
    source: str | None = None
    request_id: str | None = None
    causation: list[str] = Field(default_factory=list, description="Automation rules that led to this change")
    data: dict[str, Any]


class EventPage(BaseModel):
    data: list[EventRead]
    next_cursor: str = Field(description="Where to continue: pass it as `after` (also when this page is empty)")
    has_more: bool
