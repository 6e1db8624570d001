"""Cache-aside for single-record reads, safe against stale fills.

Each entry is `version|archived|json`. Writers mark the key with the new version *before*
commit (a pending marker readers treat as a miss) and store the new value after commit.
Every fill goes through one Lua script that refuses to replace a newer version, so a slow
reader holding an old row can never overwrite what a writer stored.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from layers.cache.client import guarded
from layers.observability.metrics import CACHE_LOOKUPS
from shared.settings import get_settings

_SET_IF_NOT_OLDER = """
local current = redis.call('GET', KEYS[1])
if current then
  local bar = string.find(current, '|', 1, true)
  local current_version = tonumber(string.sub(current, 1, bar - 1))
  if current_version and current_version > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
PENDING_TTL_SECONDS = 30


@dataclass(frozen=True)
class CachedRecord:
    version: int
    archived: bool
    body: str  # the record's JSON, exactly as the API answers it


def _key(workspace_id: str, object_type: str, record_id: str) -> str:
    return f"rec:{workspace_id}:{object_type}:{record_id}"


_scripts: dict[int, object] = {}


def _store(client: redis.Redis, key: str, version: int, value: str, ttl: int) -> None:
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_SET_IF_NOT_OLDER)
    script(keys=[key], args=[version, value, ttl])  # type: ignore[operator]


def get(workspace_id: str, object_type: str, record_id: str) -> CachedRecord | None:
    raw = guarded("cache", lambda r: r.get(_key(workspace_id, object_type, record_id)), lambda: None)
    if not raw:
        CACHE_LOOKUPS.labels(result="miss").inc()
        return None
    version, archived, body = str(raw).split("|", 2)
    if not body:  # pending marker: a write is in flight
        CACHE_LOOKUPS.labels(result="pending").inc()
        return None
    CACHE_LOOKUPS.labels(result="hit").inc()
    return CachedRecord(int(version), archived == "1", body)


def put(workspace_id: str, object_type: str, record_id: str, record: CachedRecord) -> None:
    value = f"{record.version}|{int(record.archived)}|{record.body}"
    ttl = get_settings().cache_ttl_seconds
    key = _key(workspace_id, object_type, record_id)
    guarded("cache", lambda r: _store(r, key, record.version, value, ttl), lambda: None)


def mark_pending(workspace_id: str, object_type: str, record_id: str, version: int) -> None:
    """Before commit: readers miss from now on, and fills older than `version` are refused."""
    key = _key(workspace_id, object_type, record_id)
    guarded("cache", lambda r: _store(r, key, version, f"{version}||", PENDING_TTL_SECONDS), lambda: None)
