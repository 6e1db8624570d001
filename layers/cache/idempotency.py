"""Idempotency-Key in Redis: a short lease while a keyed request runs, and its answer for fast replays.

Redis is not the truth (the database's idempotency_records is: layers/http/idempotency.py). The lease only
lets a concurrent repeat answer 409 at once instead of running beside the first; it lives LEASE_SECONDS,
so a process that dies holding it frees the key that soon. A finished answer is kept for the idempotency
TTL, and so is a mark that the key was seen: a claim that finds the mark but no lease takes over from a
request that died or failed, and only then must the database be asked what that one did. Every call
degrades to "Redis is away" instead of failing the request.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Literal

import redis

from layers.cache.client import guarded
from shared.settings import get_settings

# A repeat of a request whose process died waits at most this long for the key; then the database tells
# whether that request took effect. A request still running after it (database statements are time-limited,
# so none should) may see a repeat run beside it: the database's unique key lets only one of them commit.
LEASE_SECONDS = 30
# The seen mark outlives the database's record until the hourly purge has deleted it: a claim within that
# time still asks the database, which then frees the expired key instead of refusing it.
SEEN_GRACE_SECONDS = 2 * 3600

# GET the entry, or SET the lease when there is none and say whether the key was seen before: one round
# trip, and no gap between the steps.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return false end
return 'takeover'
"""
# Store an answer in place of our own lease (ARGV[1]; empty: none) or of nothing, never over another's.
_REMEMBER_OWN = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
# Delete the lease only if it is still ours (it may have expired and been taken by a repeat).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class Claim:
    """`leased`: this request holds the key (`lease` releases it), `first_use` when the key was never seen
    (so nothing can have committed under it); `unavailable`: Redis is away."""

    outcome: Literal["leased", "replay", "running", "mismatch", "unavailable"]
    stored: StoredResponse | None = None
    lease: str | None = None
    first_use: bool = False


def _key(owner: str, key: str) -> str:
    return f"idem:{owner}:{key}"


def _seen_key(owner: str, key: str) -> str:
    return f"idem-seen:{owner}:{key}"


def claim(owner: str, key: str, fingerprint: str) -> Claim:
    lease = json.dumps({"state": "running", "fp": fingerprint, "token": secrets.token_hex(8)})

    def attempt(client: redis.Redis) -> Claim:
        raw = client.register_script(_CLAIM)(keys=[_key(owner, key), _seen_key(owner, key)],
                                             args=[lease, LEASE_SECONDS,
                                                   get_settings().idempotency_ttl_seconds + SEEN_GRACE_SECONDS])
        if not raw or raw == "takeover":
            return Claim("leased", lease=lease, first_use=not raw)
        entry = json.loads(raw)  # type: ignore[arg-type]
        if entry["fp"] != fingerprint:
            return Claim("mismatch")
        if entry["state"] == "running":
            return Claim("running")
        return Claim("replay", StoredResponse(entry["status"], entry["headers"], entry["body"]))

    return guarded("idempotency", attempt, lambda: Claim("unavailable"))


def remember(owner: str, key: str, fingerprint: str, response: StoredResponse) -> None:
    """The key's answer (the database's), replayed from here for the idempotency TTL."""
    ttl = get_settings().idempotency_ttl_seconds
    guarded("idempotency", lambda r: r.set(_key(owner, key), _done(fingerprint, response), ex=ttl), lambda: None)


def remember_own(owner: str, key: str, fingerprint: str, response: StoredResponse, lease: str | None) -> None:
    """An answer that only Redis keeps (nothing committed): it replaces this request's own lease, never what a
    concurrent copy stored meanwhile."""
    ttl = get_settings().idempotency_ttl_seconds
    guarded("idempotency", lambda r: r.register_script(_REMEMBER_OWN)(
        keys=[_key(owner, key)], args=[lease or "", _done(fingerprint, response), ttl]), lambda: 0)


def _done(fingerprint: str, response: StoredResponse) -> str:
    return json.dumps({"state": "done", "fp": fingerprint, "status": response.status, "headers": response.headers,
                       "body": response.body})


def release(owner: str, key: str, lease: str | None) -> None:
    """Free the key for a retry: the request failed on our side (or its outcome is for the database to tell).
    The key stays seen, so the retry asks the database first."""
    if lease is None:
        return
    guarded("idempotency", lambda r: r.register_script(_RELEASE)(keys=[_key(owner, key)], args=[lease]), lambda: 0)
