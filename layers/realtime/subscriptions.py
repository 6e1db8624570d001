"""Which events a connection asked for: pure rules, evaluated per event before anything is looked up.

A connection starts subscribed to its whole workspace (the `workspace` subscription). `subscribe` adds a
subscription and, the first time, replaces that default (a narrower subscription beside "everything" would
mean nothing); `unsubscribe` removes one by id, or all of them (then nothing is sent until the next
`subscribe`). An event is sent when any subscription takes it: its type matches one of the subscription's
patterns, its record is one of the subscription's records (when it names any), and the record matches the
subscription's filter (when it has one, asked of the database through a port, per event).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.event_patterns import any_type_matches

DEFAULT_ID = "workspace"
MAX_SUBSCRIPTIONS = 20


@dataclass(frozen=True)
class Subscription:
    id: str
    event_types: tuple[str, ...] = ("*",)
    records: frozenset[str] | None = None  # "contacts/01H…"
    filter: list[dict[str, Any]] | None = None
    filter_object_type: str | None = None  # plural: the object type the filter is about

    @classmethod
    def from_applied(cls, applied: dict[str, Any]) -> Subscription:
        """From what the subscription check (the realtime capability) returned."""
        records = applied.get("records")
        return cls(id=str(applied["id"]), event_types=tuple(applied.get("event_types") or ("*",)),
                   records=frozenset(records) if records else None, filter=applied.get("filter"),
                   filter_object_type=applied.get("filter_object_type"))

    def takes(self, event: dict[str, Any]) -> bool:
        """Type and record; the filter, which needs the database, is the caller's next step."""
        if not any_type_matches(list(self.event_types), str(event.get("type", ""))):
            return False
        if self.records is not None and f"{event.get('object_type')}/{event.get('record_id')}" not in self.records:
            return False
        return self.filter is None or event.get("object_type") == self.filter_object_type

    def read(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "event_types": list(self.event_types)}
        if self.records is not None:
            body["records"] = sorted(self.records)
        if self.filter is not None:
            body["filter"] = self.filter
        return body


@dataclass
class Subscriptions:
    items: dict[str, Subscription] = field(default_factory=lambda: {DEFAULT_ID: Subscription(DEFAULT_ID)})

    def add(self, subscription: Subscription) -> None:
        if DEFAULT_ID in self.items and subscription.id != DEFAULT_ID:
            del self.items[DEFAULT_ID]
        self.items[subscription.id] = subscription

    def remove(self, subscription_id: str | None) -> bool:
        """Remove one (or all, for None); False when there was no such subscription."""
        if subscription_id is None:
            self.items.clear()
            return True
        return self.items.pop(subscription_id, None) is not None

    def taking(self, event: dict[str, Any]) -> list[Subscription]:
        return [s for s in self.items.values() if s.takes(event)]

    def read(self) -> list[dict[str, Any]]:
        return [s.read() for s in self.items.values()]
