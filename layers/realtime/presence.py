"""Who has a record open: Redis sorted sets, one per record, one member per connection, scored by expiry.

A realtime process adds a member when a person's socket sends `view`, refreshes its expiry while the socket
lives, and removes it on `leave` or disconnect; a process that dies leaves members that expire within the
TTL. Readers (the socket's `presence` messages, `GET /v1/{object}/{id}/viewers`) drop expired members and
list people once however many tabs they have open. API keys are not people: they are never listed.
Per-member expiry in a sorted set works on every Redis 7 (hash field TTLs need 7.4).
"""
from __future__ import annotations

import json
import time
from typing import Any

import redis

from layers.cache.client import guarded

PRESENCE_OBJECTS = ("contacts", "companies", "deals")


def presence_key(workspace_id: str, object_type: str, record_id: str) -> str:
    return f"rt:presence:{workspace_id}:{object_type}:{record_id}"


def member(connection_id: str, user_id: str, email: str | None, since: str) -> str:
    return json.dumps({"connection": connection_id, "user_id": user_id, "email": email, "since": since},
                      separators=(",", ":"), sort_keys=True)


def people(members: list[str]) -> list[dict[str, Any]]:
    """Members as people: one entry per user (their earliest `since`), in the order they arrived."""
    found: dict[str, dict[str, Any]] = {}
    for raw in members:
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        user_id = entry.get("user_id")
        if not isinstance(user_id, str):
            continue
        known = found.get(user_id)
        if known is None or str(entry.get("since")) < str(known["since"]):
            found[user_id] = {"user_id": user_id, "email": entry.get("email"), "since": entry.get("since")}
    return sorted(found.values(), key=lambda p: (str(p["since"]), p["user_id"]))


def viewers(workspace_id: str, object_type: str, record_id: str, *, now: float | None = None) -> list[dict[str, Any]]:
    """People viewing a record now (the api tier's read); none while Redis is away."""
    key = presence_key(workspace_id, object_type, record_id)
    moment = time.time() if now is None else now

    def read(client: redis.Redis) -> list[dict[str, Any]]:
        return people(list(client.zrangebyscore(key, moment, "+inf")))  # type: ignore[arg-type]

    return guarded("presence", read, list)
