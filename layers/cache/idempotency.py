"""Idempotency-Key records in Redis, scoped to the workspace, kept 24 hours.

A key is claimed with SET NX while its request runs (short TTL, so a crashed process frees
it), then replaced by the stored response. Without Redis we cannot promise exactly-once, so
requests that carry a key are answered 503 rather than silently risking a double write.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import redis

from layers.cache.client import guarded
from shared.errors import ServiceUnavailable
from shared.settings import get_settings

RUNNING_TTL_SECONDS = 120


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class Claim:
    outcome: Literal["new", "replay", "running", "mismatch"]
    stored: StoredResponse | None = None


def _key(workspace_id: str, key: str) -> str:
    return f"idem:{workspace_id}:{key}"


def _unavailable() -> Claim:
    raise ServiceUnavailable(
        "Idempotency-Key cannot be honoured right now; retry with the same key",
        headers={"Retry-After": "1"},
    )


def claim(workspace_id: str, key: str, fingerprint: str) -> Claim:
    redis_key = _key(workspace_id, key)
    running = json.dumps({"state": "running", "fp": fingerprint})

    def attempt(client: redis.Redis) -> Claim:
        if client.set(redis_key, running, nx=True, ex=RUNNING_TTL_SECONDS):
            return Claim("new")
        raw = client.get(redis_key)
        if raw is None:  # expired between the two calls
            return Claim("new") if client.set(redis_key, running, nx=True, ex=RUNNING_TTL_SECONDS) else Claim("running")
        entry = json.loads(raw)
        if entry["fp"] != fingerprint:
            return Claim("mismatch")
        if entry["state"] == "running":
            return Claim("running")
        return Claim("replay", StoredResponse(entry["status"], entry["headers"], entry["body"]))

    return guarded("idempotency", attempt, _unavailable)


def complete(workspace_id: str, key: str, fingerprint: str, response: StoredResponse) -> None:
    value = json.dumps(
        {"state": "done", "fp": fingerprint, "status": response.status, "headers": response.headers,
         "body": response.body}
    )
    ttl = get_settings().idempotency_ttl_seconds
    guarded("idempotency", lambda r: r.set(_key(workspace_id, key), value, ex=ttl), lambda: None)


def release(workspace_id: str, key: str) -> None:
    """The request failed on our side: free the key so the client's retry runs again."""
    guarded("idempotency", lambda r: r.delete(_key(workspace_id, key)), lambda: None)
