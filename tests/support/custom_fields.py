"""Helpers for custom field tests: define fields through the API, read what the tables hold."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from functions.fields.models import FieldDefinition
from layers.db.uow import UnitOfWork
from layers.queue.outbox import OutboxEvent
from layers.records.custom import CustomUniqueValue
from shared.context import system_scope
from tests.support.api import Api

OPTIONS = ["Gold", "Silver", "Bronze"]

# One field of every type: key → (type, extra definition attributes)
EVERY_TYPE: dict[str, tuple[str, dict[str, Any]]] = {
    "note": ("text", {}),
    "bio": ("long_text", {}),
    "score": ("number", {}),
    "budget": ("currency", {}),
    "renewal_on": ("date", {}),
    "last_seen_at": ("datetime", {}),
    "vip": ("boolean", {}),
    "tier": ("single_select", {"options": OPTIONS}),
    "interests": ("multi_select", {"options": ["Golf", "Sailing", "Chess"]}),
    "billing_email": ("email", {}),
    "website_url": ("url", {}),
}

# A valid value per key, as sent and as stored/returned.
VALID: dict[str, tuple[Any, Any]] = {
    "note": ("  hello  ", "hello"),
    "bio": ("line 1\nline 2", "line 1\nline 2"),
    "score": (7.5, 7.5),
    "budget": ("1250.50", "1250.50"),
    "renewal_on": ("2027-01-31", "2027-01-31"),
    "last_seen_at": ("2026-03-01T11:30:00+02:00", "2026-03-01T09:30:00.000000Z"),
    "vip": (True, True),
    "tier": ("gold", "Gold"),
    "interests": (["Chess", "golf", "Chess"], ["Chess", "Golf"]),
    "billing_email": ("Billing@Example.COM", "billing@example.com"),
    "website_url": ("https://example.com/about", "https://example.com/about"),
}

# An invalid value per key.
INVALID: dict[str, Any] = {
    "note": 5, "bio": ["x"], "score": "7", "budget": 12.5, "renewal_on": "2027-02-30",
    "last_seen_at": "2026-03-01T09:30:00", "vip": "yes", "tier": "Platinum", "interests": ["Golf", "Darts"],
    "billing_email": "nope", "website_url": "ftp://example.com",
}


def define(api: Api, object_type: str, key: str, field_type: str, **extra: Any) -> dict[str, Any]:
    body = {"object_type": object_type, "key": key, "label": key.replace("_", " ").title(), "type": field_type,
            **extra}
    reply = api.post("/v1/fields", body)
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


def define_every_type(api: Api, object_type: str) -> dict[str, dict[str, Any]]:
    return {key: define(api, object_type, key, field_type, **extra) for key, (field_type, extra) in EVERY_TYPE.items()}


@dataclass(frozen=True)
class FieldTables:
    definitions: list[tuple[str, str, int, bool]]  # (id, key, version, archived)
    events: list[tuple[str, str]]  # (event_type, record_id) of fields
    claims: list[tuple[str, str]]  # (field_id, record_id)


def field_tables(api: Api) -> FieldTables:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        rows = uow.session.scalars(select(FieldDefinition).order_by(FieldDefinition.id))
        definitions = [(r.id, r.key, r.version, r.archived_at is not None) for r in rows]
        events = [(e.event_type, e.record_id) for e in uow.session.scalars(
            select(OutboxEvent).where(OutboxEvent.object_type == "fields").order_by(OutboxEvent.id))]
        claims = sorted((c.field_id, c.record_id) for c in uow.session.scalars(select(CustomUniqueValue)))
    return FieldTables(definitions, events, claims)


def field_events(api: Api) -> list[dict[str, Any]]:
    with UnitOfWork(system_scope(api.workspace_id)) as uow:
        return [e.payload for e in uow.session.scalars(
            select(OutboxEvent).where(OutboxEvent.object_type == "fields").order_by(OutboxEvent.id))]


def search(api: Api, object_type: str, body: dict[str, Any]) -> Any:
    return api.post(f"/v1/{object_type}/search", body)


def where(prop: str, operator: str, **operands: Any) -> dict[str, Any]:
    return {"filter_groups": [{"filters": [{"property": prop, "operator": operator, **operands}]}], "limit": 200}
